//! Configuration values that must never be printed.

use std::fmt;

/// A secret from configuration (a signing key, an API key, a webhook secret). `Debug` and
/// `Display` print `[redacted]`, so a config struct can derive `Debug` and be logged safely.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_redacted_wherever_it_is_printed() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Config {
            stripe_key: Secret,
        }
        let config = Config {
            stripe_key: Secret::new("sk_test_123"),
        };
        assert_eq!(format!("{config:?}"), "Config { stripe_key: [redacted] }");
        assert_eq!(config.stripe_key.to_string(), "[redacted]");
        assert_eq!(config.stripe_key.expose(), "sk_test_123");
    }
}
