//! Typed service configuration from Spin variables: the [`VariableSource`] port (Spin variables
//! in a component, a map in tests), the one [`ConfigError`], and readers that validate a value
//! once. A variable set to an empty or blank string counts as unset, because manifests commonly
//! declare `default = ""`. Errors name the variable and the problem, never the value, which may
//! be a secret.

use session::{TokenVerifier, VerifyingKey};

/// Where configuration values come from.
pub trait VariableSource {
    /// The variable's value, or `None` when it is not set.
    fn get(&self, name: &str) -> Option<String>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("Spin variable `{name}` is required but not set")]
    Missing { name: &'static str },
    #[error("Spin variable `{name}` is invalid: {problem}")]
    Invalid { name: &'static str, problem: String },
}

impl ConfigError {
    /// The variable at fault.
    pub fn variable(&self) -> &'static str {
        match self {
            ConfigError::Missing { name } | ConfigError::Invalid { name, .. } => name,
        }
    }

    pub fn invalid(name: &'static str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            name,
            problem: problem.into(),
        }
    }
}

/// A fixed set of values, for tests (which never touch the process environment) and tools.
impl VariableSource for std::collections::HashMap<&str, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

/// The trimmed value, or `None` when unset or blank.
pub fn optional(vars: &dyn VariableSource, name: &str) -> Option<String> {
    vars.get(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

pub fn required(vars: &dyn VariableSource, name: &'static str) -> Result<String, ConfigError> {
    optional(vars, name).ok_or(ConfigError::Missing { name })
}

/// A whole number greater than zero, if set.
pub fn positive(vars: &dyn VariableSource, name: &'static str) -> Result<Option<u64>, ConfigError> {
    let Some(text) = optional(vars, name) else {
        return Ok(None);
    };
    match text.parse::<u64>() {
        Ok(value) if value > 0 => Ok(Some(value)),
        _ => Err(ConfigError::invalid(
            name,
            "must be a whole number greater than 0",
        )),
    }
}

/// `true` or `false` (any case), if set.
pub fn boolean(vars: &dyn VariableSource, name: &'static str) -> Result<Option<bool>, ConfigError> {
    let Some(text) = optional(vars, name) else {
        return Ok(None);
    };
    if text.eq_ignore_ascii_case("true") {
        Ok(Some(true))
    } else if text.eq_ignore_ascii_case("false") {
        Ok(Some(false))
    } else {
        Err(ConfigError::invalid(name, "must be `true` or `false`"))
    }
}

/// The variable holding the session public key every verifying service is granted.
pub const JWT_PUBLIC_KEY: &str = "jwt_public_key";

/// The session-token verifier from `jwt_public_key` (base64 of the 32 raw Ed25519 bytes).
pub fn session_verifier(vars: &dyn VariableSource) -> Result<TokenVerifier, ConfigError> {
    let key = VerifyingKey::from_base64_raw(&required(vars, JWT_PUBLIC_KEY)?)
        .map_err(|error| ConfigError::invalid(JWT_PUBLIC_KEY, error.to_string()))?;
    Ok(TokenVerifier::new(key))
}
