//! Issuing and checking session tokens.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{SigningKey, VerifyingKey};

/// What a session token says: who the user is, and when the token was issued and expires
/// (seconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub id: String,
    pub email: String,
    pub iat: u64,
    pub exp: u64,
}

/// A token could not be signed. Signing with a validated key only fails on a bug in the
/// signing library, so this carries no key material.
#[derive(Debug, thiserror::Error)]
#[error("could not sign the session token")]
pub struct SignError(#[source] jsonwebtoken::errors::Error);

/// Issues session tokens that expire `lifetime_secs` after they are signed.
#[derive(Debug, Clone)]
pub struct TokenSigner {
    pub key: SigningKey,
    pub lifetime_secs: u64,
}

impl TokenSigner {
    pub fn new(key: SigningKey, lifetime_secs: u64) -> TokenSigner {
        TokenSigner { key, lifetime_secs }
    }

    /// A token for `user_id` and `email`, issued at `now_unix_secs`.
    pub fn sign(
        &self,
        user_id: &str,
        email: &str,
        now_unix_secs: u64,
    ) -> Result<String, SignError> {
        let claims = Claims {
            id: user_id.to_owned(),
            email: email.to_owned(),
            iat: now_unix_secs,
            exp: now_unix_secs.saturating_add(self.lifetime_secs),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            self.key.encoding_key(),
        )
        .map_err(SignError)
    }
}

/// Checks session tokens against the auth service's public key.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    pub key: VerifyingKey,
}

impl TokenVerifier {
    pub fn new(key: VerifyingKey) -> TokenVerifier {
        TokenVerifier { key }
    }

    /// The claims of a genuine, unexpired EdDSA token, or `None`: a token that is malformed,
    /// tampered with, signed by another key or algorithm, lacks `exp`, or has `exp <= now`
    /// means "not signed in", whatever the reason, and the reason is not worth telling.
    pub fn verify(&self, token: &str, now_unix_secs: u64) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        // The library's expiry check reads the system clock; the caller's `now` is the truth,
        // so expiry is checked below, with no leeway.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, self.key.decoding_key(), &validation).ok()?;
        (data.claims.exp > now_unix_secs).then_some(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::{TEST_ONLY_PRIVATE_KEY, TEST_ONLY_PUBLIC_KEY};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::EncodingKey;
    use proptest::prelude::*;

    const NOW: u64 = 1_750_000_000;
    const DAY: u64 = 24 * 60 * 60;
    const USER: &str = "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c";

    fn signer() -> TokenSigner {
        let key = SigningKey::from_base64_pkcs8(TEST_ONLY_PRIVATE_KEY).expect("valid key");
        TokenSigner::new(key, DAY)
    }

    fn verifier() -> TokenVerifier {
        TokenVerifier::new(VerifyingKey::from_base64_raw(TEST_ONLY_PUBLIC_KEY).expect("valid key"))
    }

    fn token() -> String {
        signer().sign(USER, "a@example.com", NOW).expect("sign")
    }

    /// Replaces one of the token's three dot-separated parts.
    fn with_part(token: &str, index: usize, part: &str) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[index] = part;
        parts.join(".")
    }

    #[test]
    fn a_signed_token_verifies_to_its_claims() {
        let claims = verifier().verify(&token(), NOW).expect("valid token");
        assert_eq!(
            claims,
            Claims {
                id: USER.to_owned(),
                email: "a@example.com".to_owned(),
                iat: NOW,
                exp: NOW + DAY,
            }
        );
    }

    #[test]
    fn the_token_header_names_eddsa() {
        let header = jsonwebtoken::decode_header(token()).expect("header");
        assert_eq!(header.alg, Algorithm::EdDSA);
    }

    #[test]
    fn a_token_is_valid_until_the_second_before_it_expires() {
        let token = token();
        assert!(verifier().verify(&token, NOW + DAY - 1).is_some());
        assert!(verifier().verify(&token, NOW + DAY).is_none());
        assert!(verifier().verify(&token, NOW + DAY + 1).is_none());
    }

    #[test]
    fn a_token_with_a_tampered_payload_is_rejected() {
        let token = token();
        let forged = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"id":"someone-else","email":"a@example.com","iat":{NOW},"exp":{}}}"#,
            NOW + DAY
        ));
        assert!(
            verifier()
                .verify(&with_part(&token, 1, &forged), NOW)
                .is_none()
        );
    }

    #[test]
    fn a_token_with_a_tampered_signature_is_rejected() {
        let token = token();
        let signature = token.rsplit('.').next().expect("three parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        bytes[0] ^= 1;
        let tampered = with_part(&token, 2, &URL_SAFE_NO_PAD.encode(bytes));
        assert!(verifier().verify(&tampered, NOW).is_none());
    }

    #[test]
    fn a_token_signed_by_another_key_is_rejected() {
        let other = SigningKey::from_seed(&[9; 32]).expect("valid seed");
        let token = TokenSigner::new(other, DAY)
            .sign(USER, "a@example.com", NOW)
            .expect("sign");
        assert!(verifier().verify(&token, NOW).is_none());
    }

    #[test]
    fn an_hs256_token_with_the_same_claims_is_rejected() {
        let claims = verifier().verify(&token(), NOW).expect("valid token");
        // An attacker who knows the public key might try it as an HMAC secret.
        for secret in [TEST_ONLY_PUBLIC_KEY.as_bytes(), b"secret".as_slice()] {
            let token = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret),
            )
            .expect("sign");
            assert!(verifier().verify(&token, NOW).is_none());
        }
    }

    #[test]
    fn an_unsigned_token_is_rejected() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let token = with_part(&with_part(&token(), 0, &header), 2, "");
        assert!(verifier().verify(&token, NOW).is_none());
    }

    #[test]
    fn a_genuine_token_without_an_expiry_is_rejected() {
        #[derive(Serialize)]
        struct Legacy<'a> {
            id: &'a str,
            email: &'a str,
            iat: u64,
        }
        let key = SigningKey::from_base64_pkcs8(TEST_ONLY_PRIVATE_KEY).expect("valid key");
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &Legacy {
                id: USER,
                email: "a@example.com",
                iat: NOW,
            },
            key.encoding_key(),
        )
        .expect("sign");
        assert!(verifier().verify(&token, NOW).is_none());
    }

    #[test]
    fn garbage_is_not_a_token() {
        for text in ["", "abc", "a.b.c", "...", "eyJ.eyJ.sig"] {
            assert!(verifier().verify(text, NOW).is_none(), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn verifying_arbitrary_text_never_panics(text in "[A-Za-z0-9_.-]{0,200}") {
            prop_assert!(verifier().verify(&text, NOW).is_none());
        }
    }
}
