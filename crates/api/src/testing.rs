//! Test support (the `testing` feature): requests as a browser sends them, and response bodies
//! read back.

use serde_json::Value;

use crate::{Method, Request, Response};

/// A request to `path`, signed in with the session `token` when given, with `body` as JSON when
/// given.
pub fn request(method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Request {
    let mut request = Request::new(method, path);
    if let Some(body) = body {
        request = request
            .with_header("content-type", "application/json")
            .with_body(body.to_string());
    }
    match token {
        Some(token) => request.with_header("cookie", &format!("session={token}")),
        None => request,
    }
}

/// The response's body as JSON; panics when it is not.
pub fn json(response: &Response) -> Value {
    serde_json::from_slice(&response.body).expect("a JSON body")
}

/// The response's body as text, for assertion messages.
pub fn text(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}
