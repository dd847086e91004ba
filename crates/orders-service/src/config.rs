//! The orders service's configuration, read from Spin variables and validated once.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `jwt_public_key` | base64 of the 32 raw bytes of the Ed25519 key that signs session tokens | required |
//! | `order_window_seconds` | how long an order holds its ticket unpaid, 1 to 86400 | 900 (15 minutes) |
//!
//! A variable set to an empty (or all-blank) string counts as unset, because a Spin manifest
//! commonly declares variables with `default = ""`.

pub use api::config::{ConfigError, VariableSource};
use session::TokenVerifier;

pub const ORDER_WINDOW_SECONDS: &str = "order_window_seconds";
const DEFAULT_ORDER_WINDOW_SECS: u64 = 15 * 60;
/// A day: far beyond any sensible hold, small enough that a typo does not hold a ticket for a year.
const MAX_ORDER_WINDOW_SECS: u64 = 24 * 60 * 60;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct OrdersConfig {
    /// Checks the session tokens the auth service issued.
    pub verifier: TokenVerifier,
    /// How long a new order holds its ticket before it expires unpaid, in milliseconds.
    pub order_window_ms: u64,
}

impl OrdersConfig {
    /// Reads and validates every variable; the first problem found is the error.
    pub fn from_variables(vars: &dyn VariableSource) -> Result<OrdersConfig, ConfigError> {
        let window_secs =
            api::config::positive(vars, ORDER_WINDOW_SECONDS)?.unwrap_or(DEFAULT_ORDER_WINDOW_SECS);
        if window_secs > MAX_ORDER_WINDOW_SECS {
            return Err(ConfigError::invalid(
                ORDER_WINDOW_SECONDS,
                format!("must be at most {MAX_ORDER_WINDOW_SECS} (a day)"),
            ));
        }
        Ok(OrdersConfig {
            verifier: api::config::session_verifier(vars)?,
            order_window_ms: window_secs * 1000,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use api::config::JWT_PUBLIC_KEY;
    use session::SigningKey;

    use super::*;

    fn with_window(window: Option<&str>) -> HashMap<&'static str, String> {
        let key = SigningKey::from_seed(&[7; 32])
            .expect("valid seed")
            .verifying_key()
            .to_base64_raw();
        let mut vars = HashMap::from([(JWT_PUBLIC_KEY, key)]);
        if let Some(window) = window {
            vars.insert(ORDER_WINDOW_SECONDS, window.to_owned());
        }
        vars
    }

    #[test]
    fn the_window_defaults_to_fifteen_minutes() {
        for window in [None, Some(""), Some("  ")] {
            let config = OrdersConfig::from_variables(&with_window(window)).expect("valid");
            assert_eq!(config.order_window_ms, 900_000, "{window:?}");
        }
    }

    #[test]
    fn a_window_is_read_in_seconds() {
        let config = OrdersConfig::from_variables(&with_window(Some(" 2 "))).expect("valid");
        assert_eq!(config.order_window_ms, 2000);
        let config = OrdersConfig::from_variables(&with_window(Some("86400"))).expect("valid");
        assert_eq!(config.order_window_ms, 86_400_000);
    }

    #[test]
    fn an_unusable_window_names_its_variable() {
        for window in ["0", "-5", "1.5", "soon", "86401", "99999999999999999999"] {
            let error = OrdersConfig::from_variables(&with_window(Some(window))).expect_err(window);
            assert_eq!(error.variable(), ORDER_WINDOW_SECONDS, "{window}");
        }
    }

    #[test]
    fn the_public_key_is_required() {
        let mut vars = with_window(None);
        vars.remove(JWT_PUBLIC_KEY);
        assert_eq!(
            OrdersConfig::from_variables(&vars).map(|_| ()),
            Err(ConfigError::Missing {
                name: JWT_PUBLIC_KEY
            })
        );
    }
}
