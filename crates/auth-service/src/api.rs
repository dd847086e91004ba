//! The routes of the auth service.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use api::{ApiError, Method, Request, Response, Validator, parse_json, string_or_empty};
use domain::{Email, Password, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use session::{Claims, expired_session_cookie, session_cookie};

use crate::{
    AttemptCounter, AuthConfig, Clock, InsertUserError, NewUser, PasswordHasher, UserStore,
};

/// Credentials are two short strings; anything bigger is not a sign-up form.
const MAX_BODY_BYTES: usize = 16 * 1024;

const EMAIL_IN_USE: &str = "Email is already in use";
/// The rate-limit key of a client address, shared by sign-up and sign-in.
fn address_key(ip: IpAddr) -> String {
    format!("signin:addr:{ip}")
}

/// One message for an unknown email and a wrong password, so a response never tells which.
const INVALID_CREDENTIALS: &str = "Invalid credentials";

/// One request's view of the service: the configuration and the ports it may use.
pub struct AuthApi<'a> {
    pub config: &'a AuthConfig,
    pub users: &'a dyn UserStore,
    pub attempts: &'a dyn AttemptCounter,
    pub hasher: &'a PasswordHasher,
    pub clock: &'a dyn Clock,
}

/// The body of sign-up and sign-in, loose so that a missing or mistyped field is a validation
/// message for that field.
#[derive(Deserialize)]
struct CredentialsBody {
    email: Option<Value>,
    password: Option<Value>,
}

/// A user as the API shows it.
#[derive(Serialize)]
struct UserBody<'a> {
    id: &'a str,
    email: &'a str,
}

#[derive(Serialize)]
struct CurrentUserBody {
    #[serde(rename = "currentUser")]
    current_user: Option<Claims>,
}

impl AuthApi<'_> {
    /// Answers one request. Never fails: errors become responses in the reference's format.
    pub fn handle(&self, request: &Request) -> Response {
        let result = match (&request.method, request.path.as_str()) {
            (Method::Post, "/api/users/signup") => self.sign_up(request),
            (Method::Post, "/api/users/signin") => self.sign_in(request),
            (Method::Post, "/api/users/signout") => Ok(self.sign_out()),
            // The reference's client calls the hyphenated path, the canonical course app the
            // other one.
            (Method::Get, "/api/users/current-user" | "/api/users/currentuser") => {
                Ok(self.current_user(request))
            }
            // As the reference's catch-all: a known path with another method is not found too.
            _ => Err(ApiError::NotFound),
        };
        result.unwrap_or_else(ApiError::into_response)
    }

    fn sign_up(&self, request: &Request) -> Result<Response, ApiError> {
        let (email, password) = credentials(request)?;
        let now = self.clock.now_ms() / 1000;
        // A sign-up costs a hash as a sign-in does: the same per-address limit, the same window.
        let limit = self.config.signin_limit;
        let keys: Vec<(String, u32)> = self
            .client_address(request)
            .map(|ip| (address_key(ip), limit.max_attempts_per_address))
            .into_iter()
            .collect();
        self.check_rate(&keys, now)?;
        // A cheap check first, so a taken email does not cost a hash. It is racy; the UNIQUE
        // constraint behind `insert` settles concurrent sign-ups.
        if self
            .users
            .find_by_email(&email)
            .context("looking up an email at sign-up")?
            .is_some()
        {
            return Err(ApiError::BadRequest(EMAIL_IN_USE.to_owned()));
        }
        let started = Instant::now();
        let password_hash = self.hasher.hash(&password)?;
        let hash_time = started.elapsed();
        let user = NewUser {
            id: UserId::new_random(),
            email,
            password_hash,
            created_at: now,
        };
        match self.users.insert(&user) {
            Ok(()) => {}
            Err(InsertUserError::EmailTaken) => {
                return Err(ApiError::BadRequest(EMAIL_IN_USE.to_owned()));
            }
            Err(InsertUserError::Other(cause)) => {
                return Err(ApiError::Internal(cause.context("inserting a new user")));
            }
        }
        self.signed_in(
            201,
            &user.id.to_string(),
            user.email.as_str(),
            now,
            hash_time,
        )
    }

    fn sign_in(&self, request: &Request) -> Result<Response, ApiError> {
        let (email, password) = credentials(request)?;
        let now = self.clock.now_ms() / 1000;
        // Before the lookup and the hash, so a guesser over the limit costs us almost nothing.
        let limit = self.config.signin_limit;
        let mut keys = vec![(format!("signin:email:{email}"), limit.max_attempts)];
        keys.extend(
            self.client_address(request)
                .map(|ip| (address_key(ip), limit.max_attempts_per_address)),
        );
        self.check_rate(&keys, now)?;
        let user = self
            .users
            .find_by_email(&email)
            .context("looking up a user to sign in")?;
        let Some(user) = user else {
            self.hasher.verify_dummy(&password);
            return Err(ApiError::BadRequest(INVALID_CREDENTIALS.to_owned()));
        };
        let started = Instant::now();
        if !self.hasher.verify(&password, &user.password_hash) {
            return Err(ApiError::BadRequest(INVALID_CREDENTIALS.to_owned()));
        }
        self.signed_in(200, &user.id, &user.email, now, started.elapsed())
    }

    /// Records one attempt under each key; 429 if any is over its limit, with `Retry-After` until
    /// the latest of their windows ends.
    fn check_rate(&self, keys: &[(String, u32)], now: u64) -> Result<(), ApiError> {
        let window_secs = self.config.signin_limit.window_secs;
        let mut retry_after_secs = None;
        for (key, max_attempts) in keys {
            let attempts = self
                .attempts
                .hit(key, window_secs, now)
                .context("counting an attempt")?;
            if attempts.count > *max_attempts {
                let wait = attempts.window_ends_at.saturating_sub(now).max(1);
                retry_after_secs = retry_after_secs.max(Some(wait));
            }
        }
        match retry_after_secs {
            Some(retry_after_secs) => Err(ApiError::TooManyRequests { retry_after_secs }),
            None => Ok(()),
        }
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy
    /// (`trusted_proxies`); then the nearest address in `X-Forwarded-For` that is not one of
    /// them (each proxy appends the address it got the request from, so only the addresses the
    /// trusted proxies appended can be believed, read from the right).
    fn client_address(&self, request: &Request) -> Option<IpAddr> {
        let peer = request.client_addr()?;
        let trusted = |ip: &IpAddr| {
            self.config
                .trusted_proxies
                .iter()
                .any(|net| net.contains(ip))
        };
        let mut client = peer;
        if trusted(&peer) {
            let forwarded = request.header("x-forwarded-for").unwrap_or_default();
            for hop in forwarded.rsplit(',') {
                let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                    break;
                };
                client = ip;
                if !trusted(&ip) {
                    break;
                }
            }
        }
        Some(client)
    }

    fn sign_out(&self) -> Response {
        // Plain text, as the reference answers; the cookie is expired even if none was sent.
        Response::text(200, "signed out").with_header(
            "set-cookie",
            &expired_session_cookie(self.config.secure_cookies),
        )
    }

    fn current_user(&self, request: &Request) -> Response {
        let now = self.clock.now_ms() / 1000;
        let current_user = api::current_user(request, &self.config.verifier, now);
        Response::json(200, &CurrentUserBody { current_user })
    }

    /// The user's JSON with a fresh session cookie, and the password hash's duration as a
    /// standard `Server-Timing` entry, so the cost of Argon2 inside the Wasm instance is visible
    /// to benchmarks and browser dev tools (every sign-in pays it, so it reveals nothing).
    fn signed_in(
        &self,
        status: u16,
        id: &str,
        email: &str,
        now: u64,
        hash_time: Duration,
    ) -> Result<Response, ApiError> {
        let token = self
            .config
            .signer
            .sign(id, email, now)
            .context("signing a session token")?;
        let cookie = session_cookie(
            &token,
            self.config.session_lifetime_secs,
            self.config.secure_cookies,
        );
        let timing = format!("argon2;dur={:.1}", hash_time.as_secs_f64() * 1000.0);
        Ok(Response::json(status, &UserBody { id, email })
            .with_header("set-cookie", &cookie)
            .with_header("server-timing", &timing))
    }
}

/// The email and password of a sign-up or sign-in body, with every field error at once.
fn credentials(request: &Request) -> Result<(Email, Password), ApiError> {
    let body: CredentialsBody = parse_json(request, MAX_BODY_BYTES)?;
    let mut validator = Validator::new();
    let email = validator.check("email", Email::parse(string_or_empty(&body.email)));
    let password = validator.check("password", Password::parse(string_or_empty(&body.password)));
    validator.finish_with(|| Some((email?, password?)))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use domain::testing::FixedClock;
    use serde_json::json;
    use session::{SigningKey, TokenSigner, TokenVerifier};

    use super::*;
    use crate::config::tests::{Variables, key_variables};
    use crate::{Attempts, RateLimit, SqliteAttempts, StoredUser};
    use storage::{Database, NativeDatabase};

    /// An attempt counter whose store is down.
    struct FailingCounter;

    impl AttemptCounter for FailingCounter {
        fn hit(&self, _key: &str, _window_secs: u64, _now: u64) -> anyhow::Result<Attempts> {
            anyhow::bail!("database unavailable")
        }
    }

    const NOW: u64 = 1_750_000_000;
    const LIFETIME: u64 = 3600;
    const WINDOW: u64 = 900;
    const MAX_ATTEMPTS: u32 = 5;
    const MAX_ATTEMPTS_PER_ADDRESS: u32 = 8;

    /// The users table: a map keyed by email, whose insert refuses a second row for an email
    /// as a UNIQUE constraint would. `hide_from_lookups` makes `find_by_email` miss, as it does
    /// for a sign-up that races another; `fail` makes every call an error.
    #[derive(Default)]
    struct MemoryUsers {
        rows: RefCell<HashMap<String, StoredUser>>,
        hide_from_lookups: bool,
        fail: bool,
    }

    impl UserStore for MemoryUsers {
        fn find_by_email(&self, email: &Email) -> anyhow::Result<Option<StoredUser>> {
            anyhow::ensure!(!self.fail, "database is locked");
            if self.hide_from_lookups {
                return Ok(None);
            }
            Ok(self
                .rows
                .borrow()
                .get(email.as_str())
                .map(|row| StoredUser {
                    id: row.id.clone(),
                    email: row.email.clone(),
                    password_hash: row.password_hash.clone(),
                }))
        }

        fn insert(&self, user: &NewUser) -> Result<(), InsertUserError> {
            if self.fail {
                return Err(InsertUserError::Other(anyhow::anyhow!(
                    "database is locked"
                )));
            }
            let mut rows = self.rows.borrow_mut();
            if rows.contains_key(user.email.as_str()) {
                return Err(InsertUserError::EmailTaken);
            }
            rows.insert(
                user.email.as_str().to_owned(),
                StoredUser {
                    id: user.id.to_string(),
                    email: user.email.as_str().to_owned(),
                    password_hash: user.password_hash.clone(),
                },
            );
            Ok(())
        }
    }

    /// One auth service with in-memory ports, and named calls for its routes.
    struct TestApp {
        config: AuthConfig,
        users: MemoryUsers,
        /// The auth database, for the attempt counters.
        db: NativeDatabase,
        counter_fails: bool,
        hasher: PasswordHasher,
        clock: FixedClock,
    }

    impl TestApp {
        fn new() -> TestApp {
            TestApp::with_config(test_config(true))
        }

        fn with_config(config: AuthConfig) -> TestApp {
            TestApp {
                config,
                users: MemoryUsers::default(),
                db: {
                    let db = NativeDatabase::open_in_memory().expect("database");
                    storage::migrate(&db, crate::MIGRATIONS).expect("migrations/auth/");
                    db
                },
                counter_fails: false,
                hasher: PasswordHasher::with_params(8, 1),
                clock: FixedClock::at(NOW * 1000),
            }
        }

        fn handle(&self, request: &Request) -> Response {
            let counter = SqliteAttempts(&self.db);
            AuthApi {
                config: &self.config,
                users: &self.users,
                attempts: if self.counter_fails {
                    &FailingCounter
                } else {
                    &counter
                },
                hasher: &self.hasher,
                clock: &self.clock,
            }
            .handle(request)
        }

        fn advance(&self, secs: u64) {
            self.clock.advance(secs * 1000);
        }

        fn sign_up(&self, email: &str, password: &str) -> Response {
            self.handle(&credentials_request("/api/users/signup", email, password))
        }

        fn sign_in(&self, email: &str, password: &str) -> Response {
            self.handle(&credentials_request("/api/users/signin", email, password))
        }

        fn sign_in_from(&self, addr: &str, email: &str, password: &str) -> Response {
            self.handle(
                &credentials_request("/api/users/signin", email, password)
                    .with_header("spin-client-addr", addr),
            )
        }

        fn current_user(&self, cookie: Option<&str>) -> Response {
            let request = Request::new(Method::Get, "/api/users/current-user");
            self.handle(&match cookie {
                Some(cookie) => request.with_header("cookie", cookie),
                None => request,
            })
        }

        /// The `session=<token>` pair of a response's Set-Cookie.
        fn session_of(response: &Response) -> String {
            let cookie = response.header("set-cookie").expect("a Set-Cookie header");
            cookie
                .split(';')
                .next()
                .expect("a name=value pair")
                .to_owned()
        }
    }

    fn test_config(secure_cookies: bool) -> AuthConfig {
        let key = SigningKey::from_seed(&[7; 32]).expect("valid seed");
        AuthConfig {
            verifier: TokenVerifier::new(key.verifying_key()),
            signer: TokenSigner::new(key, LIFETIME),
            session_lifetime_secs: LIFETIME,
            secure_cookies,
            signin_limit: RateLimit {
                max_attempts: MAX_ATTEMPTS,
                max_attempts_per_address: MAX_ATTEMPTS_PER_ADDRESS,
                window_secs: WINDOW,
            },
            trusted_proxies: vec!["10.0.0.0/8".parse().expect("a CIDR range")],
        }
    }

    /// The keys the attempt counters hold.
    fn counted_keys(app: &TestApp) -> Vec<String> {
        app.db
            .execute("SELECT key FROM attempt_windows ORDER BY key", &[])
            .expect("keys")
            .iter()
            .map(|row| row.text("key").expect("key").to_owned())
            .collect()
    }

    fn json_request(path: &str, body: &str) -> Request {
        Request::new(Method::Post, path)
            .with_header("content-type", "application/json")
            .with_body(body)
    }

    fn credentials_request(path: &str, email: &str, password: &str) -> Request {
        json_request(
            path,
            &json!({"email": email, "password": password}).to_string(),
        )
    }

    fn body(response: &Response) -> Value {
        serde_json::from_slice(&response.body).expect("a JSON body")
    }

    fn errors(messages: &[&str]) -> Value {
        json!({"errors": messages.iter().map(|m| json!({"message": m})).collect::<Vec<_>>()})
    }

    fn assert_error(response: &Response, status: u16, message: &str) {
        assert_eq!(response.status, status, "{:?}", body(response));
        assert_eq!(body(response), errors(&[message]));
    }

    // Sign-up

    #[test]
    fn signing_up_creates_the_user_and_answers_201_with_id_email_and_a_session_cookie() {
        let app = TestApp::new();
        let response = app.sign_up("  Alice@Example.COM ", "secret1");
        assert_eq!(response.status, 201);
        let user = body(&response);
        assert_eq!(user["email"], "alice@example.com");
        let id = user["id"].as_str().expect("an id");
        assert!(UserId::parse(id).is_ok(), "{id}");
        assert_eq!(user.as_object().map(|o| o.len()), Some(2), "{user}");
        let row = app
            .users
            .find_by_email(&Email::parse("alice@example.com").expect("valid"))
            .expect("lookup")
            .expect("stored");
        assert_eq!(row.id, id);
        assert!(row.password_hash.starts_with("$argon2id$"));
        assert!(app.hasher.verify(
            &Password::parse("secret1").expect("valid"),
            &row.password_hash
        ));
    }

    #[test]
    fn the_session_cookie_is_http_only_same_site_lax_for_the_whole_site_and_secure() {
        let response = TestApp::new().sign_up("a@b.co", "secret1");
        let cookie = response.header("set-cookie").expect("a Set-Cookie header");
        let token = TestApp::session_of(&response);
        assert_eq!(
            cookie,
            format!("{token}; Path=/; Max-Age={LIFETIME}; HttpOnly; SameSite=Lax; Secure")
        );
    }

    #[test]
    fn the_session_cookie_is_not_secure_when_the_app_is_served_over_plain_http() {
        let response = TestApp::with_config(test_config(false)).sign_up("a@b.co", "secret1");
        let cookie = response.header("set-cookie").expect("a Set-Cookie header");
        assert!(cookie.ends_with("; HttpOnly; SameSite=Lax"), "{cookie}");
        assert!(!cookie.contains("Secure"), "{cookie}");
    }

    #[test]
    fn the_session_token_names_the_new_user_and_expires_after_the_lifetime() {
        let app = TestApp::new();
        let response = app.sign_up("a@b.co", "secret1");
        let id = body(&response)["id"].clone();
        let cookie = TestApp::session_of(&response);
        let token = cookie.strip_prefix("session=").expect("the session cookie");
        let claims = app
            .config
            .verifier
            .verify(token, NOW)
            .expect("a valid token");
        assert_eq!(claims.id, id.as_str().expect("an id"));
        assert_eq!(claims.email, "a@b.co");
        assert_eq!((claims.iat, claims.exp), (NOW, NOW + LIFETIME));
    }

    #[test]
    fn an_email_already_in_use_is_refused_whatever_its_case() {
        let app = TestApp::new();
        assert_eq!(app.sign_up("bob@example.com", "secret1").status, 201);
        for email in ["bob@example.com", "BOB@Example.com", " bob@EXAMPLE.COM"] {
            let response = app.sign_up(email, "another1");
            assert_error(&response, 400, "Email is already in use");
            assert!(response.header("set-cookie").is_none());
        }
        assert_eq!(app.users.rows.borrow().len(), 1);
    }

    #[test]
    fn a_sign_up_that_loses_the_race_to_the_unique_constraint_is_told_the_email_is_in_use() {
        let mut app = TestApp::new();
        app.users.hide_from_lookups = true;
        assert_eq!(app.sign_up("race@example.com", "secret1").status, 201);
        let response = app.sign_up("race@example.com", "secret2");
        assert_error(&response, 400, "Email is already in use");
    }

    #[test]
    fn invalid_credentials_are_all_reported_at_once_on_both_routes() {
        let app = TestApp::new();
        let email_error = json!({"message": "Email must be valid", "field": "email"});
        let password_error = json!({
            "message": "Password must be at least 6 chars long and 255 max",
            "field": "password"
        });
        let long_password = "x".repeat(256);
        let cases = [
            (r#"{}"#.to_owned(), vec![&email_error, &password_error]),
            (
                r#"{"email": "nope", "password": "123"}"#.to_owned(),
                vec![&email_error, &password_error],
            ),
            (
                r#"{"email": 42, "password": ["secret1"]}"#.to_owned(),
                vec![&email_error, &password_error],
            ),
            (
                r#"{"email": "a@b.co", "password": "   12345   "}"#.to_owned(),
                vec![&password_error],
            ),
            (
                json!({"email": "a@b.co", "password": long_password}).to_string(),
                vec![&password_error],
            ),
            (
                r#"{"email": null, "password": "secret1"}"#.to_owned(),
                vec![&email_error],
            ),
        ];
        for path in ["/api/users/signup", "/api/users/signin"] {
            for (request_body, expected) in &cases {
                let response = app.handle(&json_request(path, request_body));
                assert_eq!(response.status, 400, "{path} {request_body}");
                assert_eq!(
                    body(&response),
                    json!({"errors": expected}),
                    "{path} {request_body}"
                );
            }
        }
        assert!(app.users.rows.borrow().is_empty());
    }

    #[test]
    fn malformed_json_is_a_400_in_the_error_format() {
        let app = TestApp::new();
        for path in ["/api/users/signup", "/api/users/signin"] {
            let response = app.handle(&json_request(path, r#"{"email": "a@b.co", "#));
            assert_error(
                &response,
                400,
                "Malformed JSON: EOF while parsing a value at line 1 column 20",
            );
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_refused_with_415() {
        let app = TestApp::new();
        let form = Request::new(Method::Post, "/api/users/signup")
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_body("email=a%40b.co&password=secret1");
        assert_error(
            &app.handle(&form),
            415,
            "Content-Type must be application/json",
        );
        let untyped = Request::new(Method::Post, "/api/users/signin")
            .with_body(r#"{"email":"a@b.co","password":"secret1"}"#);
        assert_error(
            &app.handle(&untyped),
            415,
            "Content-Type must be application/json",
        );
    }

    #[test]
    fn a_body_over_16_kib_is_refused_with_413() {
        let app = TestApp::new();
        let padding = " ".repeat(16 * 1024);
        let request = json_request(
            "/api/users/signup",
            &format!(r#"{{"email":"a@b.co","password":"secret1"}}{padding}"#),
        );
        assert_error(&app.handle(&request), 413, "Request body is too large");
    }

    #[test]
    fn a_failing_user_store_is_a_500_that_hides_the_cause() {
        let mut app = TestApp::new();
        app.users.fail = true;
        for response in [
            app.sign_up("a@b.co", "secret1"),
            app.sign_in("a@b.co", "secret1"),
        ] {
            assert_error(&response, 500, "Something went wrong");
        }
    }

    #[test]
    fn a_failing_insert_is_a_500() {
        struct InsertFails;
        impl UserStore for InsertFails {
            fn find_by_email(&self, _: &Email) -> anyhow::Result<Option<StoredUser>> {
                Ok(None)
            }
            fn insert(&self, _: &NewUser) -> Result<(), InsertUserError> {
                Err(anyhow::anyhow!("disk I/O error").into())
            }
        }
        let app = TestApp::new();
        let response = AuthApi {
            config: &app.config,
            users: &InsertFails,
            attempts: &SqliteAttempts(&app.db),
            hasher: &app.hasher,
            clock: &app.clock,
        }
        .handle(&credentials_request(
            "/api/users/signup",
            "a@b.co",
            "secret1",
        ));
        assert_error(&response, 500, "Something went wrong");
    }

    // Sign-in

    #[test]
    fn signing_in_answers_200_with_the_user_and_a_fresh_session_cookie() {
        let app = TestApp::new();
        let signed_up = body(&app.sign_up("carol@example.com", "secret1"));
        app.advance(60);
        // The email is matched case-insensitively and the password is trimmed, as at sign-up.
        let response = app.sign_in("Carol@Example.com", "  secret1 ");
        assert_eq!(response.status, 200);
        assert_eq!(body(&response), signed_up);
        let cookie = TestApp::session_of(&response);
        let token = cookie.strip_prefix("session=").expect("the session cookie");
        let claims = app
            .config
            .verifier
            .verify(token, NOW + 60)
            .expect("a valid token");
        assert_eq!(claims.iat, NOW + 60);
        assert_eq!(claims.email, "carol@example.com");
        let set_cookie = response.header("set-cookie").expect("a Set-Cookie header");
        assert!(set_cookie.ends_with("; Max-Age=3600; HttpOnly; SameSite=Lax; Secure"));
    }

    #[test]
    fn an_unknown_email_and_a_wrong_password_get_the_same_answer() {
        let app = TestApp::new();
        app.sign_up("dave@example.com", "secret1");
        let unknown = app.sign_in("nobody@example.com", "secret1");
        let wrong = app.sign_in("dave@example.com", "secret2");
        for response in [&unknown, &wrong] {
            assert_error(response, 400, "Invalid credentials");
            assert!(response.header("set-cookie").is_none());
        }
        assert_eq!(unknown, wrong);
    }

    #[test]
    fn an_unknown_email_still_spends_a_password_verification() {
        let app = TestApp::new();
        assert!(app.hasher.dummy_hash_is_unset());
        app.sign_in("nobody@example.com", "secret1");
        assert!(!app.hasher.dummy_hash_is_unset());
    }

    #[test]
    fn too_many_attempts_on_one_email_are_refused_with_429_until_the_window_ends() {
        let app = TestApp::new();
        app.sign_up("erin@example.com", "secret1");
        for _ in 0..MAX_ATTEMPTS {
            assert_error(
                &app.sign_in("erin@example.com", "wrong-guess"),
                400,
                "Invalid credentials",
            );
        }
        app.advance(100);
        // Over the limit even the right password is refused, before any lookup.
        let refused = app.sign_in("ERIN@example.com", "secret1");
        assert_error(&refused, 429, "Too many requests, try again later");
        assert_eq!(refused.header("retry-after"), Some("800"));
        assert!(refused.header("set-cookie").is_none());
        // Another email is not affected.
        assert_eq!(app.sign_in("frank@example.com", "secret1").status, 400);

        app.advance(WINDOW - 100 - 1);
        assert_eq!(
            app.sign_in("erin@example.com", "secret1")
                .header("retry-after"),
            Some("1")
        );
        app.advance(1);
        assert_eq!(app.sign_in("erin@example.com", "secret1").status, 200);
    }

    #[test]
    fn too_many_attempts_from_one_address_are_refused_whatever_the_email() {
        let app = TestApp::new();
        app.sign_up("grace@example.com", "secret1");
        for n in 0..MAX_ATTEMPTS_PER_ADDRESS {
            let response = app.sign_in_from(
                "203.0.113.9:5000",
                &format!("user{n}@example.com"),
                "secret1",
            );
            assert_eq!(response.status, 400);
        }
        let refused = app.sign_in_from("203.0.113.9:6000", "grace@example.com", "secret1");
        assert_error(&refused, 429, "Too many requests, try again later");
        assert_eq!(refused.header("retry-after"), Some("900"));
        // Another address may still sign in to an account whose own count is low.
        let other = app.sign_in_from("[2001:db8::1]:5000", "grace@example.com", "secret1");
        assert_eq!(other.status, 200);
        assert!(counted_keys(&app).contains(&"signin:addr:2001:db8::1".to_owned()));
    }

    /// Behind the ingress every request comes from the proxy: its `X-Forwarded-For` names the
    /// client, read from the right past the trusted proxies; anyone else's header is ignored.
    #[test]
    fn the_client_address_comes_from_x_forwarded_for_only_through_a_trusted_proxy() {
        let app = TestApp::new();
        let from = |peer: &str, forwarded: Option<&str>| {
            let mut request = credentials_request("/api/users/signin", "a@b.co", "secret1")
                .with_header("spin-client-addr", peer);
            if let Some(forwarded) = forwarded {
                request = request.with_header("x-forwarded-for", forwarded);
            }
            app.handle(&request);
        };
        // Through the ingress (10.1.2.3), which appended the client's address.
        from("10.1.2.3:4000", Some("198.51.100.7"));
        // A client that forged a hop: the ingress appended the real one after it.
        from("10.1.2.3:4000", Some("192.0.2.66, 198.51.100.8"));
        // Two trusted hops: the client is the nearest untrusted one.
        from("10.1.2.3:4000", Some("198.51.100.9, 10.9.9.9"));
        // Not through a trusted proxy: the header is the client's own word, and ignored.
        from("203.0.113.5:4000", Some("198.51.100.10"));
        // A trusted proxy that sent no header (a health check): its own address.
        from("10.1.2.3:4000", None);
        let addresses: Vec<String> = counted_keys(&app)
            .into_iter()
            .filter_map(|key| key.strip_prefix("signin:addr:").map(str::to_owned))
            .collect();
        assert_eq!(
            addresses,
            [
                "10.1.2.3",
                "198.51.100.7",
                "198.51.100.8",
                "198.51.100.9",
                "203.0.113.5"
            ]
        );
    }

    /// Sign-up costs a password hash too: it counts against the address's limit, shared with
    /// sign-in, and over it nothing is created.
    #[test]
    fn sign_ups_count_against_the_address_limit() {
        let app = TestApp::new();
        for n in 0..MAX_ATTEMPTS_PER_ADDRESS {
            let response = app.handle(
                &credentials_request("/api/users/signup", &format!("u{n}@example.com"), "secret1")
                    .with_header("spin-client-addr", "203.0.113.9:5000"),
            );
            assert_eq!(response.status, 201);
        }
        let refused = app.handle(
            &credentials_request("/api/users/signup", "late@example.com", "secret1")
                .with_header("spin-client-addr", "203.0.113.9:5001"),
        );
        assert_error(&refused, 429, "Too many requests, try again later");
        assert_eq!(app.sign_in("late@example.com", "secret1").status, 400);
        let signin = app.sign_in_from("203.0.113.9:5002", "u0@example.com", "secret1");
        assert_eq!(signin.status, 429);
    }

    #[test]
    fn only_well_formed_sign_ins_count_towards_the_limit() {
        let app = TestApp::new();
        for _ in 0..10 {
            assert_eq!(app.sign_in("not an email", "x").status, 400);
        }
        assert!(counted_keys(&app).is_empty());
    }

    #[test]
    fn a_failing_attempt_counter_is_a_500() {
        let mut app = TestApp::new();
        app.counter_fails = true;
        assert_error(
            &app.sign_in("a@b.co", "secret1"),
            500,
            "Something went wrong",
        );
    }

    // Sign-out

    #[test]
    fn signing_out_answers_signed_out_and_expires_the_cookie() {
        for secure in [true, false] {
            let app = TestApp::with_config(test_config(secure));
            let response = app.handle(&Request::new(Method::Post, "/api/users/signout"));
            assert_eq!(response.status, 200);
            assert_eq!(response.body, b"signed out");
            assert_eq!(
                response.header("set-cookie"),
                Some(expired_session_cookie(secure).as_str())
            );
            let cookie = response.header("set-cookie").expect("a Set-Cookie header");
            assert!(
                cookie.starts_with("session=; Path=/; Max-Age=0;"),
                "{cookie}"
            );
            assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
        }
    }

    // Current user

    #[test]
    fn the_current_user_is_read_from_a_valid_session_cookie() {
        let app = TestApp::new();
        let response = app.sign_up("heidi@example.com", "secret1");
        let id = body(&response)["id"].clone();
        let cookie = TestApp::session_of(&response);
        app.advance(10);
        let response = app.current_user(Some(&format!("theme=dark; {cookie}")));
        assert_eq!(response.status, 200);
        assert_eq!(
            body(&response),
            json!({"currentUser": {
                "id": id,
                "email": "heidi@example.com",
                "iat": NOW,
                "exp": NOW + LIFETIME,
            }})
        );
    }

    #[test]
    fn the_current_user_is_also_read_from_a_bearer_token_and_the_currentuser_alias() {
        let app = TestApp::new();
        let cookie = TestApp::session_of(&app.sign_up("ivan@example.com", "secret1"));
        let token = cookie.strip_prefix("session=").expect("the session cookie");
        let request = Request::new(Method::Get, "/api/users/currentuser")
            .with_header("authorization", &format!("Bearer {token}"));
        let response = app.handle(&request);
        assert_eq!(response.status, 200);
        assert_eq!(body(&response)["currentUser"]["email"], "ivan@example.com");
    }

    #[test]
    fn a_missing_tampered_foreign_or_expired_token_means_no_current_user() {
        let app = TestApp::new();
        let cookie = TestApp::session_of(&app.sign_up("judy@example.com", "secret1"));
        let foreign = TokenSigner::new(
            SigningKey::from_seed(&[8; 32]).expect("valid seed"),
            LIFETIME,
        )
        .sign("someone", "judy@example.com", NOW)
        .expect("sign");
        // One character changed inside the signature.
        let mut chars: Vec<char> = cookie.chars().collect();
        let index = chars.len() - 10;
        chars[index] = if chars[index] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        let cases = [
            None,
            Some("session=garbage".to_owned()),
            Some(tampered),
            Some(format!("session={foreign}")),
        ];
        for cookie in &cases {
            let response = app.current_user(cookie.as_deref());
            assert_eq!(response.status, 200);
            assert_eq!(body(&response), json!({"currentUser": null}), "{cookie:?}");
        }
        app.advance(LIFETIME);
        assert_eq!(
            body(&app.current_user(Some(&cookie))),
            json!({"currentUser": null})
        );
    }

    // Routing

    #[test]
    fn unknown_paths_and_known_paths_with_another_method_are_not_found() {
        let app = TestApp::new();
        let cases = [
            (Method::Get, "/api/users/signup"),
            (Method::Put, "/api/users/signin"),
            (Method::Get, "/api/users/signout"),
            (Method::Post, "/api/users/current-user"),
            (Method::Delete, "/api/users/currentuser"),
            (Method::Get, "/api/users"),
            (Method::Get, "/api/users/current-user/extra"),
            (Method::Get, "/api/tickets"),
            (Method::Other("BREW".to_owned()), "/"),
        ];
        for (method, path) in cases {
            let response = app.handle(&Request::new(method.clone(), path));
            assert_error(&response, 404, "Not found");
        }
    }

    #[test]
    fn the_current_user_route_ignores_a_query_string() {
        let app = TestApp::new();
        let response = app.handle(&Request::new(Method::Get, "/api/users/current-user?x=1"));
        assert_eq!(body(&response), json!({"currentUser": null}));
    }

    #[test]
    fn configuration_from_variables_drives_the_service() {
        let mut vars: Variables = key_variables();
        vars.insert("plain_http", "true".to_owned());
        vars.insert("session_lifetime_seconds", "120".to_owned());
        let app =
            TestApp::with_config(AuthConfig::from_variables(&vars).expect("valid configuration"));
        let response = app.sign_up("kim@example.com", "secret1");
        let cookie = response.header("set-cookie").expect("a Set-Cookie header");
        assert!(
            cookie.ends_with("; Max-Age=120; HttpOnly; SameSite=Lax"),
            "{cookie}"
        );
        let session = TestApp::session_of(&response);
        assert_eq!(
            body(&app.current_user(Some(&session)))["currentUser"]["exp"],
            NOW + 120
        );
    }
}
