//! Ed25519 keys in their single-line configuration forms.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{DecodingKey, EncodingKey};

/// A key string that is not what its configuration variable must hold. The messages never
/// include the key text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is not valid standard base64")]
    NotBase64,
    #[error("the private key is not a PKCS#8 DER Ed25519 key")]
    NotPkcs8Ed25519,
    #[error("the public key must be 32 raw bytes, found {0}")]
    WrongPublicKeyLength(usize),
    #[error("the public key is not a valid Ed25519 point")]
    InvalidPublicKey,
}

fn decode_base64(text: &str) -> Result<Vec<u8>, KeyError> {
    // Values pasted into `.env` files often keep a trailing newline.
    STANDARD
        .decode(text.trim())
        .map_err(|_| KeyError::NotBase64)
}

/// The private key that signs session tokens. Held by the auth service alone.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    verifying: VerifyingKey,
}

impl SigningKey {
    /// Reads the standard base64 of a PKCS#8 DER Ed25519 private key.
    pub fn from_base64_pkcs8(text: &str) -> Result<SigningKey, KeyError> {
        let der = decode_base64(text)?;
        let key = ed25519_dalek::SigningKey::from_pkcs8_der(&der)
            .map_err(|_| KeyError::NotPkcs8Ed25519)?;
        Ok(SigningKey::from_dalek(&key, der))
    }

    /// A key from its 32-byte seed, for tests and development tools.
    pub fn from_seed(seed: &[u8; 32]) -> Result<SigningKey, KeyError> {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let der = key.to_pkcs8_der().map_err(|_| KeyError::NotPkcs8Ed25519)?;
        Ok(SigningKey::from_dalek(&key, der.as_bytes().to_vec()))
    }

    fn from_dalek(key: &ed25519_dalek::SigningKey, pkcs8_der: Vec<u8>) -> SigningKey {
        SigningKey {
            encoding: EncodingKey::from_ed_der(&pkcs8_der),
            verifying: VerifyingKey::from_dalek(key.verifying_key()),
        }
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.verifying.clone()
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

/// The public key that checks session tokens. Every service may hold it.
#[derive(Clone)]
pub struct VerifyingKey {
    decoding: DecodingKey,
    raw: [u8; 32],
}

impl VerifyingKey {
    /// Reads the standard base64 of the 32 raw public-key bytes.
    pub fn from_base64_raw(text: &str) -> Result<VerifyingKey, KeyError> {
        let bytes = decode_base64(text)?;
        let raw: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongPublicKeyLength(bytes.len()))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map_err(|_| KeyError::InvalidPublicKey)?;
        Ok(VerifyingKey::from_dalek(key))
    }

    fn from_dalek(key: ed25519_dalek::VerifyingKey) -> VerifyingKey {
        let raw = key.to_bytes();
        VerifyingKey {
            decoding: DecodingKey::from_ed_der(&raw),
            raw,
        }
    }

    /// The form [`VerifyingKey::from_base64_raw`] reads.
    pub fn to_base64_raw(&self) -> String {
        STANDARD.encode(self.raw)
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for VerifyingKey {}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", self.to_base64_raw())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// TEST-ONLY key pair: the Ed25519 example of RFC 8410 §10.3 (private, as `openssl
    /// genpkey -outform DER | base64 -w0` prints it) and its public key. Public knowledge;
    /// never configure it anywhere.
    pub(crate) const TEST_ONLY_PRIVATE_KEY: &str =
        "MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC";
    pub(crate) const TEST_ONLY_PUBLIC_KEY: &str = "Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=";

    #[test]
    fn an_openssl_private_key_yields_its_known_public_key() {
        let key = SigningKey::from_base64_pkcs8(TEST_ONLY_PRIVATE_KEY).expect("valid key");
        assert_eq!(key.verifying_key().to_base64_raw(), TEST_ONLY_PUBLIC_KEY);
        let public = VerifyingKey::from_base64_raw(TEST_ONLY_PUBLIC_KEY).expect("valid key");
        assert_eq!(key.verifying_key(), public);
    }

    #[test]
    fn surrounding_whitespace_in_a_configured_key_is_ignored() {
        let padded = format!("  {TEST_ONLY_PRIVATE_KEY}\n");
        assert!(SigningKey::from_base64_pkcs8(&padded).is_ok());
        let padded = format!("{TEST_ONLY_PUBLIC_KEY}\n");
        assert!(VerifyingKey::from_base64_raw(&padded).is_ok());
    }

    #[test]
    fn a_key_made_from_a_seed_round_trips_through_its_configuration_form() {
        let key = SigningKey::from_seed(&[7; 32]).expect("valid seed");
        let public = key.verifying_key().to_base64_raw();
        assert_eq!(
            VerifyingKey::from_base64_raw(&public).expect("valid key"),
            key.verifying_key()
        );
    }

    #[test]
    fn malformed_private_keys_are_rejected() {
        let cases = [
            ("", KeyError::NotPkcs8Ed25519),
            ("not base64!", KeyError::NotBase64),
            // The public key is valid base64 but not PKCS#8.
            (TEST_ONLY_PUBLIC_KEY, KeyError::NotPkcs8Ed25519),
            // A 2048-bit RSA key's PKCS#8 header, truncated.
            (
                "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
                KeyError::NotPkcs8Ed25519,
            ),
        ];
        for (text, error) in cases {
            assert_eq!(
                SigningKey::from_base64_pkcs8(text).map(|_| ()),
                Err(error),
                "{text:?}"
            );
        }
    }

    #[test]
    fn malformed_public_keys_are_rejected() {
        let non_point = STANDARD.encode(
            // y = 2 is not on the curve (no x satisfies the equation).
            {
                let mut bytes = [0u8; 32];
                bytes[0] = 2;
                bytes
            },
        );
        let cases = [
            ("", KeyError::WrongPublicKeyLength(0)),
            ("%%%", KeyError::NotBase64),
            (TEST_ONLY_PRIVATE_KEY, KeyError::WrongPublicKeyLength(48)),
            ("AAAA", KeyError::WrongPublicKeyLength(3)),
            (non_point.as_str(), KeyError::InvalidPublicKey),
        ];
        for (text, error) in cases {
            assert_eq!(
                VerifyingKey::from_base64_raw(text).map(|_| ()),
                Err(error),
                "{text:?}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_private_key() {
        let key = SigningKey::from_base64_pkcs8(TEST_ONLY_PRIVATE_KEY).expect("valid key");
        assert_eq!(format!("{key:?}"), "SigningKey([redacted])");
    }
}
