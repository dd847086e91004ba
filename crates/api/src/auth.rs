//! Who is making the request.

use session::{Claims, TokenVerifier, token_from_headers};

use crate::{ApiError, Request};

/// The signed-in user, from an `Authorization: Bearer` token or else the `session` cookie,
/// verified locally at `now_unix_secs`. `None` for no token and for an invalid, tampered or
/// expired one alike: such a request is anonymous.
pub fn current_user(
    request: &Request,
    verifier: &TokenVerifier,
    now_unix_secs: u64,
) -> Option<Claims> {
    // HTTP/2 clients may split cookies over several `cookie` headers.
    let cookies = request
        .header_values("cookie")
        .collect::<Vec<_>>()
        .join("; ");
    let token = token_from_headers(Some(&cookies), request.header("authorization"))?;
    verifier.verify(token, now_unix_secs)
}

/// The signed-in user, or 401 "You are not signed in".
pub fn require_user(
    request: &Request,
    verifier: &TokenVerifier,
    now_unix_secs: u64,
) -> Result<Claims, ApiError> {
    current_user(request, verifier, now_unix_secs).ok_or_else(ApiError::not_signed_in)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Method;
    use session::{SigningKey, TokenSigner};

    const NOW: u64 = 1_750_000_000;
    const USER: &str = "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c";

    fn keys() -> (TokenSigner, TokenVerifier) {
        let key = SigningKey::from_seed(&[1; 32]).expect("valid seed");
        let verifier = TokenVerifier::new(key.verifying_key());
        (TokenSigner::new(key, 3600), verifier)
    }

    fn request() -> Request {
        Request::new(Method::Get, "/api/users/current-user")
    }

    #[test]
    fn the_user_is_read_from_the_session_cookie() {
        let (signer, verifier) = keys();
        let token = signer.sign(USER, "a@b.co", NOW).expect("sign");
        let request = request().with_header("cookie", &format!("theme=dark; session={token}"));
        let claims = current_user(&request, &verifier, NOW).expect("signed in");
        assert_eq!(claims.id, USER);
        assert_eq!(claims.email, "a@b.co");
    }

    #[test]
    fn the_user_is_read_from_a_bearer_token() {
        let (signer, verifier) = keys();
        let token = signer.sign(USER, "a@b.co", NOW).expect("sign");
        let request = request().with_header("Authorization", &format!("Bearer {token}"));
        assert_eq!(
            require_user(&request, &verifier, NOW)
                .map(|claims| claims.id)
                .ok(),
            Some(USER.to_owned())
        );
    }

    #[test]
    fn the_session_cookie_is_found_in_any_of_several_cookie_headers() {
        let (signer, verifier) = keys();
        let token = signer.sign(USER, "a@b.co", NOW).expect("sign");
        let request = request()
            .with_header("cookie", "theme=dark")
            .with_header("cookie", &format!("session={token}"));
        assert!(current_user(&request, &verifier, NOW).is_some());
    }

    #[test]
    fn a_missing_invalid_or_expired_token_means_not_signed_in() {
        let (signer, verifier) = keys();
        let token = signer.sign(USER, "a@b.co", NOW).expect("sign");
        let other = SigningKey::from_seed(&[2; 32]).expect("valid seed");
        let foreign = TokenSigner::new(other, 3600)
            .sign(USER, "a@b.co", NOW)
            .expect("sign");
        let cases = [
            (request(), NOW),
            (request().with_header("cookie", "session=garbage"), NOW),
            (
                request().with_header("cookie", &format!("session={token}x")),
                NOW,
            ),
            (
                request().with_header("cookie", &format!("session={foreign}")),
                NOW,
            ),
            (
                request().with_header("cookie", &format!("session={token}")),
                NOW + 3600,
            ),
            (
                request().with_header("authorization", &format!("Bearer {token}")),
                NOW + 7200,
            ),
        ];
        for (request, now) in cases {
            assert!(
                current_user(&request, &verifier, now).is_none(),
                "{request:?}"
            );
            let error = require_user(&request, &verifier, now).expect_err("not signed in");
            let response = error.into_response();
            assert_eq!(response.status, 401);
            assert_eq!(
                response.body,
                br#"{"errors":[{"message":"You are not signed in"}]}"#
            );
        }
    }
}
