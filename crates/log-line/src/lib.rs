//! Structured logs: every component writes one JSON line on stdout per request it answers and
//! per event it applies, with the time, level, component, what it handled, the outcome, how long
//! it took, and the request id. Spin keeps a component's stdout in its log files
//! (`.spin/logs/<component>_stdout.txt`) and SpinKube in the pod's log.
//!
//! The request id ties one purchase together across services. It comes from the request's
//! `x-request-id` (when it is a plain token) or the trace id of its W3C `traceparent`, and is
//! generated otherwise. It is echoed in the response, stored in every event the request causes
//! (the envelope's `requestId`), and set again while a consumer applies such an event, so events
//! caused by that event carry it on.
//!
//! Nothing else goes into a line: no bodies, no query strings, no headers, so no password, token
//! or session ever does.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

thread_local! {
    /// What this instance is handling. A Spin instance handles one request or one message, so
    /// this is per request; natively it is per thread, which keeps tests apart.
    static CURRENT: RefCell<Current> = const { RefCell::new(Current { component: "", request_id: None }) };
}

struct Current {
    component: &'static str,
    request_id: Option<String>,
}

/// Names the component whose lines follow (each component calls it when it starts handling).
pub fn set_component(component: &'static str) {
    CURRENT.with(|current| current.borrow_mut().component = component);
}

/// The request id of what is being handled, if any.
pub fn request_id() -> Option<String> {
    CURRENT.with(|current| current.borrow().request_id.clone())
}

/// Runs `work` with `request_id` as the current request id, then restores the previous one.
pub fn with_request_id<T>(request_id: Option<String>, work: impl FnOnce() -> T) -> T {
    let previous = CURRENT.with(|current| {
        current.replace_with(|c| Current {
            component: c.component,
            request_id,
        })
    });
    let result = work();
    CURRENT.with(|current| current.borrow_mut().request_id = previous.request_id);
    result
}

/// The request id for a request with these headers (looked up by lower-case name): its
/// `x-request-id` if that is 1 to 128 characters of letters, digits and `-._:`, else the trace id
/// of a well-formed `traceparent`, else a new UUID.
pub fn request_id_from<'a>(header: impl Fn(&str) -> Option<&'a str>) -> String {
    if let Some(id) = header("x-request-id").map(str::trim)
        && (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return id.to_owned();
    }
    if let Some(trace_id) = header("traceparent").and_then(trace_id) {
        return trace_id.to_owned();
    }
    uuid::Uuid::new_v4().to_string()
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), unless it is all zeros.
fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex =
        |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0');
    valid.then_some(trace)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// `info` below 400, `warn` for other 4xx, `error` for 5xx.
    pub fn of_status(status: u16) -> Level {
        match status {
            500.. => Level::Error,
            400.. => Level::Warn,
            _ => Level::Info,
        }
    }
}

/// Writes the line of one answered request: method, path (never the query), the matched Spin
/// route when there is one, status, and the time since `started`.
pub fn request(
    method: &str,
    path: &str,
    route: Option<&str>,
    status: u16,
    started: std::time::Instant,
) {
    let mut line = Line::new(Level::of_status(status), "request")
        .field("method", method)
        .field("path", path);
    if let Some(route) = route {
        line = line.field("route", route);
    }
    line.field("status", status)
        .duration(started.elapsed())
        .emit();
}

/// Writes a `warn` line of `kind` saying `message`: something went wrong that the app recovers
/// from, or that an operator should know.
pub fn warn(kind: &str, message: &str) {
    Line::new(Level::Warn, kind)
        .field("message", message)
        .emit();
}

/// Writes an `error` line of `kind` saying `message`: something failed that nothing will retry.
pub fn error(kind: &str, message: &str) {
    Line::new(Level::Error, kind)
        .field("message", message)
        .emit();
}

/// One log line, built field by field and written by [`Line::emit`].
pub struct Line(Map<String, Value>);

impl Line {
    /// A line of `kind` (`request` or `event`) with the time, level, component and current
    /// request id filled in.
    pub fn new(level: Level, kind: &str) -> Line {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut fields = Map::new();
        let millis = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        fields.insert("time".into(), domain::rfc3339_millis(millis).into());
        fields.insert("level".into(), level.as_str().into());
        CURRENT.with(|current| {
            let current = current.borrow();
            fields.insert("component".into(), current.component.into());
            if let Some(id) = &current.request_id {
                fields.insert("requestId".into(), id.clone().into());
            }
        });
        fields.insert("kind".into(), kind.into());
        Line(fields)
    }

    pub fn field(mut self, name: &str, value: impl Into<Value>) -> Line {
        self.0.insert(name.to_owned(), value.into());
        self
    }

    /// Adds `durationMs`, to the microsecond.
    pub fn duration(self, elapsed: Duration) -> Line {
        let millis = (elapsed.as_micros() as f64) / 1000.0;
        self.field("durationMs", millis)
    }

    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    /// Writes the line to stdout.
    pub fn emit(self) {
        println!("{}", self.to_json());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(headers: &[(&str, &str)]) -> String {
        request_id_from(|name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
    }

    #[test]
    fn the_request_id_comes_from_x_request_id_then_traceparent_then_is_generated() {
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            id_of(&[("x-request-id", "purchase-42"), ("traceparent", trace)]),
            "purchase-42"
        );
        assert_eq!(
            id_of(&[("traceparent", trace)]),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        // Not a plain token: a log line must not carry what a client injects.
        let injected = id_of(&[
            ("x-request-id", "a\"}\n{\"level\":\"error"),
            ("traceparent", trace),
        ]);
        assert_eq!(injected, "4bf92f3577b34da6a3ce929d0e0e4736");
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let generated = id_of(&[("traceparent", bad)]);
            assert!(
                uuid::Uuid::parse_str(&generated).is_ok(),
                "{bad} → {generated}"
            );
        }
        assert_ne!(id_of(&[]), id_of(&[]));
        assert!(uuid::Uuid::parse_str(&id_of(&[("x-request-id", &"x".repeat(129))])).is_ok());
    }

    #[test]
    fn a_line_carries_the_component_and_the_current_request_id() {
        set_component("tickets");
        let line = with_request_id(Some("r-1".into()), || {
            assert_eq!(request_id().as_deref(), Some("r-1"));
            Line::new(Level::of_status(201), "request")
                .field("status", 201)
                .duration(Duration::from_micros(1500))
        });
        assert_eq!(request_id(), None, "restored afterwards");
        let parsed: Value = serde_json::from_str(&line.to_json()).expect("JSON");
        assert_eq!(parsed["component"], "tickets");
        assert_eq!(parsed["requestId"], "r-1");
        assert_eq!(parsed["level"], "info");
        assert_eq!(parsed["kind"], "request");
        assert_eq!(parsed["durationMs"], 1.5);
        assert!(
            parsed["time"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.len() == 24)
        );
        assert_eq!(Level::of_status(404), Level::Warn);
        assert_eq!(Level::of_status(502), Level::Error);
    }
}
