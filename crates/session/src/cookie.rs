//! The `session` cookie and where a request carries its token.

/// The cookie's name, as in the reference (cookie-session's default).
pub const SESSION_COOKIE: &str = "session";

/// The `Set-Cookie` value that stores `token` for `max_age_secs`.
///
/// `HttpOnly` keeps scripts from reading it, `SameSite=Lax` keeps other sites from making the
/// browser send it on their POSTs, and `Secure` keeps it off plain HTTP unless the app is
/// configured for local plain-HTTP use.
pub fn session_cookie(token: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}"
    )
}

/// The `Set-Cookie` value that makes a browser drop the session cookie. `Expires` in the past
/// is there for clients that predate `Max-Age`.
pub fn expired_session_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; \
         HttpOnly; SameSite=Lax{secure}"
    )
}

/// The session token a request carries: an `Authorization: Bearer` token if there is one,
/// otherwise the first `session` cookie. `cookie_header` may hold several cookies
/// (`a=1; session=…`); pass every `Cookie` header joined with `"; "`.
pub fn token_from_headers<'a>(
    cookie_header: Option<&'a str>,
    authorization_header: Option<&'a str>,
) -> Option<&'a str> {
    authorization_header
        .and_then(bearer_token)
        .or_else(|| cookie_header.and_then(session_cookie_value))
}

fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn session_cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| name.trim() == SESSION_COOKIE)
        .map(|(_, value)| {
            let value = value.trim();
            // RFC 6265 allows a cookie value in double quotes.
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
        })
        .find(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_has_every_protective_attribute() {
        assert_eq!(
            session_cookie("abc.def.ghi", 86400, true),
            "session=abc.def.ghi; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax; Secure"
        );
    }

    #[test]
    fn the_session_cookie_omits_secure_only_when_asked() {
        assert_eq!(
            session_cookie("t", 60, false),
            "session=t; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn the_expired_cookie_clears_the_value_and_expires_now() {
        let cookie = expired_session_cookie(true);
        assert_eq!(
            cookie,
            "session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; \
             SameSite=Lax; Secure"
        );
        assert!(!expired_session_cookie(false).contains("Secure"));
    }

    #[test]
    fn the_token_is_found_wherever_the_request_carries_it() {
        let cases: [(Option<&str>, Option<&str>, Option<&str>); 16] = [
            (None, None, None),
            (Some("session=tok"), None, Some("tok")),
            (Some("a=1; session=tok; b=2"), None, Some("tok")),
            (Some("a=1;session=tok"), None, Some("tok")),
            (Some("session=\"tok\""), None, Some("tok")),
            (Some("session=first; session=second"), None, Some("first")),
            (Some("session=; session=second"), None, Some("second")),
            (Some("session="), None, None),
            (Some("xsession=tok; sessions=tok"), None, None),
            (Some("garbage"), None, None),
            (None, Some("Bearer tok"), Some("tok")),
            (None, Some("bearer   tok "), Some("tok")),
            (
                Some("session=cookie"),
                Some("Bearer header"),
                Some("header"),
            ),
            (
                Some("session=cookie"),
                Some("Basic dXNlcjpwYXNz"),
                Some("cookie"),
            ),
            (Some("session=cookie"), Some("Bearer "), Some("cookie")),
            (None, Some("Bearer"), None),
        ];
        for (cookie, authorization, expected) in cases {
            assert_eq!(
                token_from_headers(cookie, authorization),
                expected,
                "cookie {cookie:?}, authorization {authorization:?}"
            );
        }
    }
}
