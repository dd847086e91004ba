//! The tickets service's configuration, read from Spin variables and validated once.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `jwt_public_key` | base64 of the 32 raw bytes of the Ed25519 key that signs session tokens | required |
//! | `resale_cap_percent` | the most a resale may ask, in percent of the face value, 100 to 1000 | 120 |
//!
//! A variable set to an empty (or all-blank) string counts as unset, because a Spin manifest
//! commonly declares variables with `default = ""`.

pub use api::config::{ConfigError, VariableSource};
use session::TokenVerifier;

pub const RESALE_CAP_PERCENT: &str = "resale_cap_percent";
const DEFAULT_RESALE_CAP_PERCENT: u64 = 120;
/// A resale may not be cheaper to cap than the face value, nor ask more than ten times it.
const RESALE_CAP_RANGE: std::ops::RangeInclusive<u64> = 100..=1000;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct TicketsConfig {
    /// Checks the session tokens the auth service issued.
    pub verifier: TokenVerifier,
    /// The most a resale may ask, in percent of the ticket's face value.
    pub resale_cap_percent: u64,
}

impl TicketsConfig {
    /// Reads and validates every variable; the first problem found is the error.
    pub fn from_variables(vars: &dyn VariableSource) -> Result<TicketsConfig, ConfigError> {
        let cap =
            api::config::positive(vars, RESALE_CAP_PERCENT)?.unwrap_or(DEFAULT_RESALE_CAP_PERCENT);
        if !RESALE_CAP_RANGE.contains(&cap) {
            return Err(ConfigError::invalid(
                RESALE_CAP_PERCENT,
                format!(
                    "must be from {} to {}",
                    RESALE_CAP_RANGE.start(),
                    RESALE_CAP_RANGE.end()
                ),
            ));
        }
        Ok(TicketsConfig {
            verifier: api::config::session_verifier(vars)?,
            resale_cap_percent: cap,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use session::SigningKey;

    use api::config::JWT_PUBLIC_KEY;

    use super::*;

    fn public_key() -> String {
        SigningKey::from_seed(&[7; 32])
            .expect("valid seed")
            .verifying_key()
            .to_base64_raw()
    }

    #[test]
    fn the_public_key_is_read_and_trimmed() {
        let vars = HashMap::from([(JWT_PUBLIC_KEY, format!(" {}\n", public_key()))]);
        let config = TicketsConfig::from_variables(&vars).expect("valid configuration");
        assert_eq!(config.verifier.key.to_base64_raw(), public_key());
    }

    #[test]
    fn an_unset_or_blank_public_key_is_missing() {
        for vars in [
            HashMap::new(),
            HashMap::from([(JWT_PUBLIC_KEY, "  ".to_owned())]),
        ] {
            assert_eq!(
                TicketsConfig::from_variables(&vars).map(|_| ()),
                Err(ConfigError::Missing {
                    name: JWT_PUBLIC_KEY
                })
            );
        }
    }

    #[test]
    fn an_unusable_public_key_is_invalid_and_not_echoed() {
        for value in ["not base64!", "AAAA", "c2VjcmV0"] {
            let vars = HashMap::from([(JWT_PUBLIC_KEY, value.to_owned())]);
            let error = TicketsConfig::from_variables(&vars).expect_err("invalid key");
            assert!(
                matches!(
                    error,
                    ConfigError::Invalid {
                        name: JWT_PUBLIC_KEY,
                        ..
                    }
                ),
                "{error:?}"
            );
            assert!(!error.to_string().contains(value), "{error}");
        }
    }

    #[test]
    fn the_resale_cap_defaults_to_120_percent_and_is_bounded() {
        let key = |cap: Option<&str>| {
            let mut vars = HashMap::from([(JWT_PUBLIC_KEY, public_key())]);
            if let Some(cap) = cap {
                vars.insert(RESALE_CAP_PERCENT, cap.to_owned());
            }
            TicketsConfig::from_variables(&vars).map(|config| config.resale_cap_percent)
        };
        assert_eq!(key(None), Ok(120));
        assert_eq!(key(Some(" ")), Ok(120));
        assert_eq!(key(Some("100")), Ok(100));
        assert_eq!(key(Some("150")), Ok(150));
        for bad in ["99", "1001", "0", "-5", "1.5", "lots"] {
            assert!(
                matches!(
                    key(Some(bad)),
                    Err(ConfigError::Invalid {
                        name: RESALE_CAP_PERCENT,
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}
