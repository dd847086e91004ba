//! The auth service end to end: every route of the reference system's contract and every fix
//! issue #3 asks for, through the real app on spin-host.

use std::time::{SystemTime, UNIX_EPOCH};

use e2e::{Host, RedisServer, Reply, TEST_PRIVATE_KEY, app, eventually, messages};
use serde_json::json;

fn credentials(email: &str, password: &str) -> serde_json::Value {
    json!({ "email": email, "password": password })
}

fn signup(host: &Host, email: &str, password: &str) -> Reply {
    host.post_json("/api/users/signup", &credentials(email, password))
}

fn signin(host: &Host, email: &str, password: &str) -> Reply {
    host.post_json("/api/users/signin", &credentials(email, password))
}

/// The `session=...` pair of a Set-Cookie header, ready to send back as a Cookie header.
fn session_pair(reply: &Reply) -> String {
    let cookie = reply
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie in {reply:?}"));
    cookie.split(';').next().expect("cookie pair").to_owned()
}

fn current_user(host: &Host, headers: &[(&str, &str)]) -> serde_json::Value {
    let reply = host.request_with("GET", "/api/users/current-user", headers, None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["currentUser"].clone()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[test]
fn signing_up_creates_an_account_signs_it_in_and_reports_the_current_user() {
    let redis = RedisServer::start();
    let host = app(&redis).start();

    let reply = signup(&host, "  Ada@Example.COM ", "correct horse");
    assert_eq!(reply.status, 201, "{}", reply.body);
    let body = reply.json();
    assert_eq!(
        body["email"], "ada@example.com",
        "emails are trimmed and lower-cased"
    );
    let id = body["id"].as_str().expect("id").to_owned();

    let cookie = reply
        .header("set-cookie")
        .expect("session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=86400"] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    assert!(
        !cookie.contains("Secure"),
        "plain-HTTP runs set no Secure: {cookie}"
    );
    let timing = reply.header("server-timing").expect("Server-Timing");
    assert!(timing.starts_with("argon2;dur="), "{timing}");

    let user = current_user(&host, &[("cookie", &session_pair(&reply))]);
    assert_eq!(user["id"], id);
    assert_eq!(user["email"], "ada@example.com");
    let iat = user["iat"].as_u64().expect("iat");
    assert_eq!(user["exp"].as_u64(), Some(iat + 86400));
    assert!(iat.abs_diff(now()) < 60);

    assert_eq!(current_user(&host, &[]), serde_json::Value::Null);
    let alias = host.request_with(
        "GET",
        "/api/users/currentuser",
        &[("cookie", &session_pair(&reply))],
        None,
    );
    assert_eq!(alias.json()["currentUser"]["id"], id);
}

#[test]
fn cookies_are_secure_unless_the_app_is_served_over_plain_http() {
    let redis = RedisServer::start();
    let host = app(&redis).env("SPIN_VARIABLE_PLAIN_HTTP", "false").start();
    let reply = signup(&host, "secure@example.com", "secret-pass");
    assert!(
        reply
            .header("set-cookie")
            .expect("cookie")
            .contains("Secure")
    );
}

#[test]
fn invalid_sign_ups_get_every_field_error_and_change_nothing() {
    let redis = RedisServer::start();
    let host = app(&redis).start();

    let reply = signup(&host, "not-an-email", "   12345   ");
    assert_eq!(reply.status, 400);
    let errors = reply.json()["errors"].clone();
    assert_eq!(errors.as_array().map(Vec::len), Some(2), "{errors}");
    assert_eq!(errors[0]["field"], "email");
    assert_eq!(errors[0]["message"], "Email must be valid");
    assert_eq!(errors[1]["field"], "password");
    assert_eq!(
        errors[1]["message"],
        "Password must be at least 6 chars long and 255 max"
    );

    let malformed = host.request_with(
        "POST",
        "/api/users/signup",
        &[("content-type", "application/json")],
        Some(b"{\"email\":"),
    );
    assert_eq!(malformed.status, 400);
    assert!(
        messages(&malformed)[0].contains("JSON"),
        "{}",
        malformed.body
    );

    let text = host.request_with(
        "POST",
        "/api/users/signup",
        &[("content-type", "text/plain")],
        Some(b"hi"),
    );
    assert_eq!(text.status, 415);
    assert_eq!(messages(&text).len(), 1);

    let huge = json!({ "email": "big@example.com", "password": "x".repeat(100_000) });
    assert_eq!(host.post_json("/api/users/signup", &huge).status, 413);

    // None of that created an account.
    assert_eq!(signin(&host, "big@example.com", "whatever1").status, 400);
}

#[test]
fn an_email_is_one_identity_whatever_its_case() {
    let redis = RedisServer::start();
    let host = app(&redis).start();
    assert_eq!(signup(&host, "grace@example.com", "password1").status, 201);
    let again = signup(&host, "GRACE@example.com", "password2");
    assert_eq!(again.status, 400);
    assert_eq!(messages(&again), ["Email is already in use"]);
    assert_eq!(signin(&host, "Grace@Example.com", "password1").status, 200);
}

#[test]
fn ten_parallel_sign_ups_with_one_email_create_exactly_one_account() {
    let redis = RedisServer::start();
    let host = app(&redis).start();
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let host = &host;
                scope.spawn(move || signup(host, "race@example.com", &format!("password-{i}")))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 1, "{replies:?}");
    for reply in replies.iter().filter(|r| r.status != 201) {
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(messages(reply), ["Email is already in use"]);
    }
}

#[test]
fn signing_in_checks_the_password_without_revealing_which_emails_exist() {
    let redis = RedisServer::start();
    let host = app(&redis).start();
    let created = signup(&host, "lin@example.com", "open sesame").json();

    let ok = signin(&host, "lin@example.com", "  open sesame  ");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        ok.json(),
        json!({ "id": created["id"], "email": "lin@example.com" })
    );
    assert_eq!(
        current_user(&host, &[("cookie", &session_pair(&ok))])["email"],
        "lin@example.com"
    );

    let wrong_password = signin(&host, "lin@example.com", "open sesame!");
    let unknown_email = signin(&host, "nobody@example.com", "open sesame");
    assert_eq!(wrong_password.status, 400);
    assert_eq!(
        (wrong_password.status, wrong_password.body.as_str()),
        (unknown_email.status, unknown_email.body.as_str())
    );
    assert!(wrong_password.header("set-cookie").is_none());

    let output = host.output.text();
    assert!(
        !output.contains("open sesame"),
        "a password reached the log"
    );
    assert!(
        !output.contains(&session_pair(&ok)[8..]),
        "a token reached the log"
    );
}

#[test]
fn signing_out_expires_the_cookie() {
    let redis = RedisServer::start();
    let host = app(&redis).start();
    let reply = host.request("POST", "/api/users/signout", None);
    assert_eq!(reply.status, 200);
    let cookie = reply.header("set-cookie").expect("cookie");
    assert!(cookie.starts_with("session=;"), "{cookie}");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
}

#[test]
fn tampered_expired_and_bearer_tokens_are_judged_locally() {
    let redis = RedisServer::start();
    let host = app(&redis).start();
    let reply = signup(&host, "tok@example.com", "password1");
    let token = session_pair(&reply)["session=".len()..].to_owned();

    let bearer = format!("Bearer {token}");
    assert_eq!(
        current_user(&host, &[("authorization", &bearer)])["email"],
        "tok@example.com"
    );

    // Flip one character of the payload: the signature no longer matches.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let flipped = if parts[1].ends_with('A') { 'B' } else { 'A' };
    parts[1].pop();
    parts[1].push(flipped);
    let tampered = format!("session={}", parts.join("."));
    assert_eq!(
        current_user(&host, &[("cookie", &tampered)]),
        serde_json::Value::Null
    );

    let key = session::SigningKey::from_base64_pkcs8(TEST_PRIVATE_KEY).expect("test key");
    let expired = session::TokenSigner::new(key, 60)
        .sign("some-id", "tok@example.com", now() - 3600)
        .expect("sign");
    assert_eq!(
        current_user(&host, &[("cookie", &format!("session={expired}"))]),
        serde_json::Value::Null
    );
    assert_eq!(
        current_user(&host, &[("cookie", "session=garbage")]),
        serde_json::Value::Null
    );
}

#[test]
fn sign_in_attempts_are_limited_per_email_and_the_limit_resets() {
    let redis = RedisServer::start();
    let host = app(&redis)
        .env("SPIN_VARIABLE_SIGNIN_MAX_ATTEMPTS", "3")
        // Long enough that the three failures land in one window on a busy machine (each
        // sign-in hashes a password), short enough to wait out below.
        .env("SPIN_VARIABLE_SIGNIN_WINDOW_SECONDS", "6")
        .start();
    signup(&host, "slow@example.com", "password1");
    for _ in 0..3 {
        assert_eq!(
            signin(&host, "slow@example.com", "wrong-password").status,
            400
        );
    }
    let limited = signin(&host, "slow@example.com", "password1");
    assert_eq!(limited.status, 429, "{}", limited.body);
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=6).contains(&retry_after), "{retry_after}");

    eventually("the window to pass", || {
        (signin(&host, "slow@example.com", "password1").status == 200).then_some(())
    });
}

/// The count is one atomic step: of 30 attempts at once from one address against a limit of 10,
/// exactly 10 get an answer about the password and 20 are refused; a read-then-write counter
/// lets a parallel burst through.
#[test]
fn parallel_sign_in_attempts_from_one_address_are_counted_exactly() {
    let redis = RedisServer::start();
    let host = app(&redis)
        .env("SPIN_VARIABLE_SIGNIN_MAX_ATTEMPTS_PER_ADDRESS", "10")
        .env("SPIN_VARIABLE_SIGNIN_WINDOW_SECONDS", "600")
        .start();
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..30)
            .map(|i| {
                let host = &host;
                scope.spawn(move || signin(host, &format!("guess{i}@example.com"), "password1"))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 400).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        20,
        "{statuses:?}"
    );
}

/// Sign-up hashes a password, as sign-in verifies one: it is limited per address the same way.
#[test]
fn sign_ups_from_one_address_are_limited_like_sign_ins() {
    let redis = RedisServer::start();
    let host = app(&redis)
        .env("SPIN_VARIABLE_SIGNIN_MAX_ATTEMPTS_PER_ADDRESS", "3")
        .env("SPIN_VARIABLE_SIGNIN_WINDOW_SECONDS", "600")
        .start();
    for i in 0..3 {
        let reply = signup(&host, &format!("new{i}@example.com"), "password1");
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let refused = signup(&host, "new3@example.com", "password1");
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.header("retry-after").is_some());
    assert_eq!(
        signin(&host, "new3@example.com", "password1").status,
        429,
        "the address's window is shared by sign-up and sign-in"
    );
}

#[test]
fn unknown_auth_routes_are_404_in_the_error_format() {
    let redis = RedisServer::start();
    let host = app(&redis).start();
    let reply = host.get("/api/users/nothing-here");
    assert_eq!(reply.status, 404);
    assert_eq!(messages(&reply).len(), 1);
    assert_eq!(host.get("/api/users/signup").status, 404, "wrong method");
}
