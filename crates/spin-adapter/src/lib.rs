//! The one place the shared crates meet `spin_sdk`: converting Spin's HTTP request and response
//! to and from the spin-free [`api`] types, reading Spin variables, and the wall clock. Service
//! logic stays in plain Rust behind ports; a component's glue uses this crate to wire it up.

use api::{Method, Request, Response};
use spin_sdk::http::Method as SpinMethod;

/// Copies a Spin request into the service-facing [`Request`] (header names lower-cased).
pub fn request_from_spin(request: &spin_sdk::http::Request) -> Request {
    let method = match request.method() {
        SpinMethod::Get => Method::Get,
        SpinMethod::Post => Method::Post,
        SpinMethod::Put => Method::Put,
        SpinMethod::Delete => Method::Delete,
        SpinMethod::Head => Method::Head,
        SpinMethod::Options => Method::Options,
        SpinMethod::Patch => Method::Patch,
        other => Method::parse(&format!("{other:?}").to_ascii_uppercase()),
    };
    let headers = request
        .headers()
        .filter_map(|(name, value)| Some((name.to_ascii_lowercase(), value.as_str()?.to_owned())))
        .collect();
    Request {
        method,
        path: request.path().to_owned(),
        query: request.query().to_owned(),
        headers,
        body: request.body().to_vec(),
    }
}

pub fn response_to_spin(response: Response) -> spin_sdk::http::Response {
    let mut builder = spin_sdk::http::Response::builder();
    builder.status(response.status);
    for (name, value) in response.headers {
        builder.header(name, value);
    }
    builder.body(response.body).build()
}

/// A Spin variable of this component, or `None` when it is not set.
pub fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok()
}

/// Seconds since the Unix epoch from the host's wall clock.
pub fn now_unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}
