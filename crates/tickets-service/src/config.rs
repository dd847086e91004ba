//! The tickets service's configuration, read from Spin variables and validated once.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `jwt_public_key` | base64 of the 32 raw bytes of the Ed25519 key that signs session tokens | required |
//!
//! A variable set to an empty (or all-blank) string counts as unset, because a Spin manifest
//! commonly declares variables with `default = ""`.

use session::{TokenVerifier, VerifyingKey};

const JWT_PUBLIC_KEY: &str = "jwt_public_key";

/// Where configuration values come from: Spin variables in the component, a map in tests.
pub trait VariableSource {
    /// The variable's value, or `None` when it is not set.
    fn get(&self, name: &str) -> Option<String>;
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct TicketsConfig {
    /// Checks the session tokens the auth service issued.
    pub verifier: TokenVerifier,
}

/// A variable is missing or unusable. Names the variable and the problem, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("Spin variable `{name}` is required but not set")]
    Missing { name: &'static str },
    #[error("Spin variable `{name}` is invalid: {problem}")]
    Invalid { name: &'static str, problem: String },
}

impl TicketsConfig {
    /// Reads and validates every variable.
    pub fn from_variables(vars: &dyn VariableSource) -> Result<TicketsConfig, ConfigError> {
        let public_key = vars
            .get(JWT_PUBLIC_KEY)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            .ok_or(ConfigError::Missing {
                name: JWT_PUBLIC_KEY,
            })?;
        let key =
            VerifyingKey::from_base64_raw(&public_key).map_err(|error| ConfigError::Invalid {
                name: JWT_PUBLIC_KEY,
                problem: error.to_string(),
            })?;
        Ok(TicketsConfig {
            verifier: TokenVerifier::new(key),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use session::SigningKey;

    use super::*;

    struct Variables(HashMap<&'static str, String>);

    impl VariableSource for Variables {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    fn public_key() -> String {
        SigningKey::from_seed(&[7; 32])
            .expect("valid seed")
            .verifying_key()
            .to_base64_raw()
    }

    #[test]
    fn the_public_key_is_read_and_trimmed() {
        let vars = Variables(HashMap::from([(
            JWT_PUBLIC_KEY,
            format!(" {}\n", public_key()),
        )]));
        let config = TicketsConfig::from_variables(&vars).expect("valid configuration");
        assert_eq!(config.verifier.key.to_base64_raw(), public_key());
    }

    #[test]
    fn an_unset_or_blank_public_key_is_missing() {
        for vars in [
            Variables(HashMap::new()),
            Variables(HashMap::from([(JWT_PUBLIC_KEY, "  ".to_owned())])),
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
            let vars = Variables(HashMap::from([(JWT_PUBLIC_KEY, value.to_owned())]));
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
