//! The passes service's configuration, read from Spin variables and validated once.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `jwt_public_key` | base64 of the 32 raw bytes of the Ed25519 key that signs session tokens | required |
//! | `pass_signing_key` | standard base64 of the PKCS#8 DER Ed25519 key that signs passes (secret; only the passes component is granted it) | required |

pub use api::config::{ConfigError, VariableSource};
use pass_secret::PassSigner;
use session::TokenVerifier;

pub const PASS_SIGNING_KEY: &str = "pass_signing_key";

/// The validated configuration.
#[derive(Debug)]
pub struct PassesConfig {
    /// Checks the session tokens the auth service issued.
    pub verifier: TokenVerifier,
    /// Signs the passes; its public half is served at `GET /api/passes/key`.
    pub signer: PassSigner,
}

impl PassesConfig {
    /// Reads and validates every variable; the first problem found is the error.
    pub fn from_variables(vars: &dyn VariableSource) -> Result<PassesConfig, ConfigError> {
        let key = api::config::required(vars, PASS_SIGNING_KEY)?;
        let signer = PassSigner::from_base64_pkcs8(&key)
            .map_err(|error| ConfigError::invalid(PASS_SIGNING_KEY, error.to_string()))?;
        Ok(PassesConfig {
            verifier: api::config::session_verifier(vars)?,
            signer,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use api::config::JWT_PUBLIC_KEY;
    use session::SigningKey;

    use super::*;

    fn variables(pass_key: Option<&str>) -> HashMap<&'static str, String> {
        let session_key = SigningKey::from_seed(&[7; 32])
            .expect("valid seed")
            .verifying_key()
            .to_base64_raw();
        let mut vars = HashMap::from([(JWT_PUBLIC_KEY, session_key)]);
        if let Some(key) = pass_key {
            vars.insert(PASS_SIGNING_KEY, key.to_owned());
        }
        vars
    }

    #[test]
    fn the_pass_signing_key_is_required_and_must_be_a_pkcs8_ed25519_key() {
        let missing = PassesConfig::from_variables(&variables(None)).expect_err("missing");
        assert_eq!(missing.variable(), PASS_SIGNING_KEY);
        let wrong = PassesConfig::from_variables(&variables(Some("c2VjcmV0"))).expect_err("wrong");
        assert_eq!(wrong.variable(), PASS_SIGNING_KEY);
        assert!(!wrong.to_string().contains("c2VjcmV0"), "{wrong}");
        // The PKCS#8 DER of the key with seed [3; 32], as `openssl genpkey -algorithm ed25519`
        // writes one.
        let der = [
            &[
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20,
            ][..],
            &[3; 32][..],
        ]
        .concat();
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.encode(der);
        let config = PassesConfig::from_variables(&variables(Some(&key))).expect("a valid key");
        assert_eq!(
            config.signer.verifier(),
            PassSigner::from_seed(&[3; 32]).verifier()
        );
    }
}
