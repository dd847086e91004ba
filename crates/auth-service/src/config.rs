//! The auth service's configuration, read from Spin variables and validated once at start-up.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `jwt_private_key` | base64 PKCS#8 DER Ed25519 key that signs session tokens (secret) | required |
//! | `jwt_public_key` | base64 of its 32 raw public-key bytes; must match the private key | required |
//! | `session_lifetime_seconds` | token and cookie lifetime, > 0 | 86400 (24 hours) |
//! | `plain_http` | `true` when the app is served over plain HTTP, so cookies drop `Secure` | `false` |
//! | `signin_max_attempts` | sign-in attempts allowed per email per window, ≥ 1 | 5 |
//! | `signin_max_attempts_per_address` | sign-in attempts allowed per client address per window (higher: many users may share one address behind a NAT), ≥ 1 | 20 |
//! | `signin_window_seconds` | length of the rate-limit window, ≥ 1 | 900 (15 minutes) |
//! | `trusted_proxies` | comma-separated addresses or CIDR ranges of the proxies in front of the app (an ingress); a request from one of them is counted against the client address it names in `X-Forwarded-For` | empty: the peer's address counts |
//!
//! A variable that is set to an empty (or all-blank) string counts as unset, because a Spin
//! manifest commonly declares optional variables with `default = ""`.

pub use api::config::{ConfigError, VariableSource};
use api::config::{JWT_PUBLIC_KEY, boolean, positive, required};
use session::{SigningKey, TokenSigner, TokenVerifier, VerifyingKey};

const JWT_PRIVATE_KEY: &str = "jwt_private_key";
const SESSION_LIFETIME_SECONDS: &str = "session_lifetime_seconds";
const PLAIN_HTTP: &str = "plain_http";
const SIGNIN_MAX_ATTEMPTS: &str = "signin_max_attempts";
const SIGNIN_WINDOW_SECONDS: &str = "signin_window_seconds";
const SIGNIN_MAX_ATTEMPTS_PER_ADDRESS: &str = "signin_max_attempts_per_address";
const TRUSTED_PROXIES: &str = "trusted_proxies";

const DEFAULT_SESSION_LIFETIME_SECS: u64 = 24 * 60 * 60;
const DEFAULT_SIGNIN_MAX_ATTEMPTS: u32 = 5;
const DEFAULT_SIGNIN_MAX_ATTEMPTS_PER_ADDRESS: u32 = 20;
const DEFAULT_SIGNIN_WINDOW_SECS: u64 = 15 * 60;

/// How many sign-in attempts an email, and a client address, may make per fixed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max_attempts: u32,
    pub max_attempts_per_address: u32,
    pub window_secs: u64,
}

/// The validated configuration. `Debug` is safe to log: the signing key prints as redacted.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Signs tokens that live `session_lifetime_secs`.
    pub signer: TokenSigner,
    pub verifier: TokenVerifier,
    /// Lifetime of a token and of the cookie that carries it.
    pub session_lifetime_secs: u64,
    /// Whether cookies carry `Secure`; false only when `plain_http` is `true`.
    pub secure_cookies: bool,
    pub signin_limit: RateLimit,
    /// The proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl AuthConfig {
    /// Reads and validates every variable; the first problem found is the error.
    pub fn from_variables(vars: &dyn VariableSource) -> Result<AuthConfig, ConfigError> {
        let private_key = required(vars, JWT_PRIVATE_KEY)?;
        let signing_key = SigningKey::from_base64_pkcs8(&private_key)
            .map_err(|error| ConfigError::invalid(JWT_PRIVATE_KEY, error.to_string()))?;
        let public_key = required(vars, JWT_PUBLIC_KEY)?;
        let verifying_key = VerifyingKey::from_base64_raw(&public_key)
            .map_err(|error| ConfigError::invalid(JWT_PUBLIC_KEY, error.to_string()))?;
        // A mismatched pair would issue tokens that no service accepts, so every sign-in would
        // "succeed" into an anonymous session; refuse to start instead.
        if signing_key.verifying_key() != verifying_key {
            return Err(ConfigError::invalid(
                JWT_PUBLIC_KEY,
                format!("it is not the public key of `{JWT_PRIVATE_KEY}`"),
            ));
        }

        let session_lifetime_secs =
            positive(vars, SESSION_LIFETIME_SECONDS)?.unwrap_or(DEFAULT_SESSION_LIFETIME_SECS);
        let plain_http = boolean(vars, PLAIN_HTTP)?.unwrap_or(false);
        let max_attempts = attempts(vars, SIGNIN_MAX_ATTEMPTS, DEFAULT_SIGNIN_MAX_ATTEMPTS)?;
        let max_attempts_per_address = attempts(
            vars,
            SIGNIN_MAX_ATTEMPTS_PER_ADDRESS,
            DEFAULT_SIGNIN_MAX_ATTEMPTS_PER_ADDRESS,
        )?;
        let window_secs =
            positive(vars, SIGNIN_WINDOW_SECONDS)?.unwrap_or(DEFAULT_SIGNIN_WINDOW_SECS);

        let trusted_proxies = proxies(vars)?;

        Ok(AuthConfig {
            trusted_proxies,
            signer: TokenSigner::new(signing_key, session_lifetime_secs),
            verifier: TokenVerifier::new(verifying_key),
            session_lifetime_secs,
            secure_cookies: !plain_http,
            signin_limit: RateLimit {
                max_attempts,
                max_attempts_per_address,
                window_secs,
            },
        })
    }
}

/// `trusted_proxies`: addresses (one host each) and CIDR ranges, comma-separated.
fn proxies(vars: &dyn VariableSource) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let listed = vars.get(TRUSTED_PROXIES).unwrap_or_default();
    listed
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::invalid(
                        TRUSTED_PROXIES,
                        format!("{item:?} is neither an IP address nor a CIDR range"),
                    )
                })
        })
        .collect()
}

/// An attempt limit: a positive number that fits in `u32`, or `default` when unset.
fn attempts(
    vars: &dyn VariableSource,
    name: &'static str,
    default: u32,
) -> Result<u32, ConfigError> {
    match positive(vars, name)? {
        Some(value) => u32::try_from(value)
            .map_err(|_| ConfigError::invalid(name, format!("must be at most {}", u32::MAX))),
        None => Ok(default),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    /// Variables from a map, so tests never touch the process environment.
    pub(crate) type Variables = HashMap<&'static str, String>;

    const SEED: [u8; 32] = [7; 32];

    /// The 16-byte PKCS#8 v1 prefix of an Ed25519 private key, before its 32-byte seed.
    const PKCS8_ED25519_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];

    pub(crate) fn private_key_base64(seed: &[u8; 32]) -> String {
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(seed);
        STANDARD.encode(der)
    }

    pub(crate) fn public_key_base64(seed: &[u8; 32]) -> String {
        SigningKey::from_seed(seed)
            .expect("valid seed")
            .verifying_key()
            .to_base64_raw()
    }

    /// Both keys set and nothing else.
    pub(crate) fn key_variables() -> Variables {
        HashMap::from([
            (JWT_PRIVATE_KEY, private_key_base64(&SEED)),
            (JWT_PUBLIC_KEY, public_key_base64(&SEED)),
        ])
    }

    fn with(name: &'static str, value: &str) -> Variables {
        let mut vars = key_variables();
        vars.insert(name, value.to_owned());
        vars
    }

    fn error(vars: &Variables) -> ConfigError {
        AuthConfig::from_variables(vars).expect_err("invalid configuration")
    }

    #[test]
    fn the_hand_built_private_key_is_the_seed_key() {
        let key = SigningKey::from_base64_pkcs8(&private_key_base64(&SEED)).expect("valid key");
        let expected = SigningKey::from_seed(&SEED).expect("valid seed");
        assert_eq!(key.verifying_key(), expected.verifying_key());
    }

    #[test]
    fn the_keys_alone_give_the_documented_defaults() {
        let config = AuthConfig::from_variables(&key_variables()).expect("valid configuration");
        assert_eq!(config.session_lifetime_secs, 86_400);
        assert_eq!(config.signer.lifetime_secs, 86_400);
        assert!(config.secure_cookies);
        assert_eq!(
            config.signin_limit,
            RateLimit {
                max_attempts: 5,
                max_attempts_per_address: 20,
                window_secs: 900
            }
        );
        assert_eq!(
            config.verifier.key,
            SigningKey::from_seed(&SEED)
                .expect("valid seed")
                .verifying_key()
        );
    }

    #[test]
    fn every_optional_variable_is_read() {
        let mut vars = key_variables();
        vars.extend([
            (SESSION_LIFETIME_SECONDS, "3600".to_owned()),
            (PLAIN_HTTP, " TRUE ".to_owned()),
            (SIGNIN_MAX_ATTEMPTS, "10".to_owned()),
            (SIGNIN_WINDOW_SECONDS, "60".to_owned()),
            (SIGNIN_MAX_ATTEMPTS_PER_ADDRESS, "40".to_owned()),
        ]);
        let config = AuthConfig::from_variables(&vars).expect("valid configuration");
        assert_eq!(config.session_lifetime_secs, 3600);
        assert_eq!(config.signer.lifetime_secs, 3600);
        assert!(!config.secure_cookies);
        assert_eq!(
            config.signin_limit,
            RateLimit {
                max_attempts: 10,
                max_attempts_per_address: 40,
                window_secs: 60
            }
        );
    }

    #[test]
    fn plain_http_false_or_blank_keeps_cookies_secure() {
        for value in ["false", "False", "", "  "] {
            let config =
                AuthConfig::from_variables(&with(PLAIN_HTTP, value)).expect("valid configuration");
            assert!(config.secure_cookies, "{value:?}");
        }
    }

    #[test]
    fn a_missing_or_blank_key_names_its_variable() {
        for name in [JWT_PRIVATE_KEY, JWT_PUBLIC_KEY] {
            for value in [None, Some(""), Some(" \n")] {
                let mut vars = key_variables();
                match value {
                    Some(value) => vars.insert(name, value.to_owned()),
                    None => vars.remove(name),
                };
                let error = error(&vars);
                assert_eq!(error, ConfigError::Missing { name }, "{name} = {value:?}");
                assert_eq!(
                    error.to_string(),
                    format!("Spin variable `{name}` is required but not set")
                );
            }
        }
    }

    #[test]
    fn a_public_key_from_another_pair_is_refused() {
        let vars = with(JWT_PUBLIC_KEY, &public_key_base64(&[8; 32]));
        let error = error(&vars);
        assert_eq!(error.variable(), JWT_PUBLIC_KEY);
        assert_eq!(
            error.to_string(),
            "Spin variable `jwt_public_key` is invalid: it is not the public key of `jwt_private_key`"
        );
    }

    #[test]
    fn malformed_keys_are_refused_without_echoing_them() {
        let cases = [
            (JWT_PRIVATE_KEY, "not base64 at all!".to_owned()),
            // The public key where the private key belongs, and the other way round.
            (JWT_PRIVATE_KEY, public_key_base64(&SEED)),
            (JWT_PUBLIC_KEY, "%%%%".to_owned()),
            (JWT_PUBLIC_KEY, private_key_base64(&SEED)),
        ];
        for (name, value) in cases {
            let error = error(&with(name, &value));
            assert_eq!(error.variable(), name, "{value:?}");
            let text = error.to_string();
            assert!(text.contains("is invalid"), "{text}");
            assert!(!text.contains(value.as_str()), "{text}");
        }
    }

    #[test]
    fn bad_numbers_and_flags_name_their_variable() {
        let cases = [
            (
                SESSION_LIFETIME_SECONDS,
                "0",
                "must be a whole number greater than 0",
            ),
            (
                SESSION_LIFETIME_SECONDS,
                "-1",
                "must be a whole number greater than 0",
            ),
            (
                SESSION_LIFETIME_SECONDS,
                "1.5",
                "must be a whole number greater than 0",
            ),
            (
                SESSION_LIFETIME_SECONDS,
                "a day",
                "must be a whole number greater than 0",
            ),
            (
                SESSION_LIFETIME_SECONDS,
                "18446744073709551616",
                "must be a whole number greater than 0",
            ),
            (
                SIGNIN_MAX_ATTEMPTS,
                "0",
                "must be a whole number greater than 0",
            ),
            (
                SIGNIN_MAX_ATTEMPTS,
                "five",
                "must be a whole number greater than 0",
            ),
            (
                SIGNIN_MAX_ATTEMPTS,
                "4294967296",
                "must be at most 4294967295",
            ),
            (
                SIGNIN_WINDOW_SECONDS,
                "0",
                "must be a whole number greater than 0",
            ),
            (
                SIGNIN_WINDOW_SECONDS,
                "15m",
                "must be a whole number greater than 0",
            ),
            (PLAIN_HTTP, "yes", "must be `true` or `false`"),
            (PLAIN_HTTP, "1", "must be `true` or `false`"),
        ];
        for (name, value, problem) in cases {
            assert_eq!(
                error(&with(name, value)),
                ConfigError::Invalid {
                    name,
                    problem: problem.to_owned()
                },
                "{name} = {value:?}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_private_key() {
        let config = AuthConfig::from_variables(&key_variables()).expect("valid configuration");
        let text = format!("{config:?}");
        assert!(text.contains("[redacted]"), "{text}");
        assert!(!text.contains(&private_key_base64(&SEED)), "{text}");
    }
}
