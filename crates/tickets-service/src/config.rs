//! The tickets service's configuration, read from Spin variables and validated once.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `jwt_public_key` | base64 of the 32 raw bytes of the Ed25519 key that signs session tokens | required |
//!
//! A variable set to an empty (or all-blank) string counts as unset, because a Spin manifest
//! commonly declares variables with `default = ""`.

pub use api::config::{ConfigError, VariableSource};
use session::TokenVerifier;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct TicketsConfig {
    /// Checks the session tokens the auth service issued.
    pub verifier: TokenVerifier,
}

impl TicketsConfig {
    /// Reads and validates every variable.
    pub fn from_variables(vars: &dyn VariableSource) -> Result<TicketsConfig, ConfigError> {
        Ok(TicketsConfig {
            verifier: api::config::session_verifier(vars)?,
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
}
