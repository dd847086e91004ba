//! Reloading open pages under `watch`: the host serves a Server-Sent Events stream of the app's
//! version at [`PATH`] and adds a small script to every HTML page that reloads the page when that
//! version changes. Only `watch` does this; `up` serves pages exactly as the components wrote
//! them.

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::watch;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::http_trigger::stopped;

/// Where pages listen for reloads. Spin keeps `/.well-known/spin/` from components' routes, so
/// this hides no route of the app; without `watch` it is a 404 like any unknown name there.
pub const PATH: &str = "/.well-known/spin/reload";

/// What pages get before `</body>`: it remembers the first version it hears and reloads on any
/// other. A restarted host announces a new version, so an open page also reloads after a
/// restart once `EventSource` has reconnected.
const SCRIPT: &str = "<script>/* spin-host watch: reloads this page after a change */(() => { \
let first = null; \
new EventSource(\"/.well-known/spin/reload\").onmessage = (event) => { \
if (first === null) first = event.data; else if (event.data !== first) location.reload(); }; \
})();</script>";

pub struct LiveReload {
    /// Tells apart the host processes a browser may have seen.
    process: u128,
    version: watch::Sender<u64>,
}

impl Default for LiveReload {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveReload {
    pub fn new() -> Self {
        let process = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        Self {
            process,
            version: watch::channel(0).0,
        }
    }

    /// Tells every open page to reload.
    pub fn announce(&self) {
        self.version.send_modify(|version| *version += 1);
    }

    /// The event stream: the current version at once, then each new one, until `stopping`
    /// (the end of this run of the app).
    pub fn events(&self, stopping: watch::Receiver<bool>) -> Response<HyperOutgoingBody> {
        let process = self.process;
        let versions = self.version.subscribe();
        let frames = futures::stream::unfold(
            (versions, stopping, true),
            move |(mut versions, stopping, first)| async move {
                if !first {
                    tokio::select! {
                        changed = versions.changed() => changed.ok()?,
                        () = stopped(stopping.clone()) => return None,
                    }
                }
                let version = *versions.borrow_and_update();
                let event = format!("retry: 500\ndata: {process:x}-{version}\n\n");
                Some((Frame::data(Bytes::from(event)), (versions, stopping, false)))
            },
        );
        let body = StreamBody::new(frames.map(Ok)).boxed_unsync();
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Adds the reload script to a complete HTML page; anything else passes through unchanged. A
/// gzipped page is decompressed first, and sent uncompressed.
pub async fn inject(response: Response<HyperOutgoingBody>) -> Response<HyperOutgoingBody> {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if response.status() != http::StatusCode::OK || !is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            eprintln!("ERROR reading an HTML response to add the reload script: {error:?}");
            return Response::from_parts(parts, empty());
        }
    };
    let gzipped = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let mut page = Vec::new();
    if gzipped {
        if flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut page)
            .is_err()
        {
            return Response::from_parts(parts, full(bytes));
        }
        parts.headers.remove(header::CONTENT_ENCODING);
    } else {
        page = bytes.to_vec();
    }
    let at = find_last_ignoring_case(&page, b"</body>").unwrap_or(page.len());
    page.splice(at..at, SCRIPT.bytes());
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, full(Bytes::from(page)))
}

fn find_last_ignoring_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|window| window.eq_ignore_ascii_case(needle))
}

fn full(bytes: Bytes) -> HyperOutgoingBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn empty() -> HyperOutgoingBody {
    full(Bytes::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    async fn page(content_type: &str, gzip: bool, text: &str) -> (http::HeaderMap, String) {
        let mut body = text.as_bytes().to_vec();
        let mut response = Response::builder().header(header::CONTENT_TYPE, content_type);
        if gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&body).expect("gzip");
            body = encoder.finish().expect("gzip");
            response = response.header(header::CONTENT_ENCODING, "gzip");
        }
        let response = response
            .header(header::CONTENT_LENGTH, body.len())
            .body(full(Bytes::from(body)))
            .expect("a valid response");
        let (parts, body) = inject(response).await.into_parts();
        let bytes = body.collect().await.expect("a body").to_bytes();
        (
            parts.headers,
            String::from_utf8(bytes.to_vec()).expect("utf-8"),
        )
    }

    #[tokio::test]
    async fn the_script_goes_before_the_last_closing_body_tag() {
        let (headers, text) = page(
            "text/html; charset=utf-8",
            false,
            "<p>&lt;/body&gt; </body> x</BODY>\n</html>",
        )
        .await;
        assert_eq!(
            text,
            format!("<p>&lt;/body&gt; </body> x{SCRIPT}</BODY>\n</html>")
        );
        assert!(headers.get(header::CONTENT_LENGTH).is_none());
    }

    #[tokio::test]
    async fn a_gzipped_page_is_sent_plain_with_the_script() {
        let (headers, text) = page("text/html", true, "<body>hi</body>").await;
        assert_eq!(text, format!("<body>hi{SCRIPT}</body>"));
        assert!(headers.get(header::CONTENT_ENCODING).is_none());
    }

    #[tokio::test]
    async fn other_types_and_pages_without_a_body_tag() {
        let (headers, text) = page("application/json", false, "{\"a\":\"</body>\"}").await;
        assert_eq!(text, "{\"a\":\"</body>\"}");
        assert!(headers.get(header::CONTENT_LENGTH).is_some());
        let (_, text) = page("text/html", false, "<p>bare").await;
        assert_eq!(text, format!("<p>bare{SCRIPT}"));
    }

    #[tokio::test]
    async fn the_stream_sends_the_version_then_each_change_and_ends_with_the_run() {
        let live = LiveReload::new();
        let (stop, stopping) = watch::channel(false);
        let mut body = live.events(stopping).into_body();
        let mut next = async || {
            let frame = body.frame().await?.ok()?;
            String::from_utf8(frame.into_data().ok()?.to_vec()).ok()
        };
        let first = next().await.expect("the current version");
        assert!(
            first.starts_with("retry: 500\ndata: ") && first.ends_with("-0\n\n"),
            "{first}"
        );
        live.announce();
        let second = next().await.expect("the next version");
        assert!(second.ends_with("-1\n\n"), "{second}");
        stop.send_replace(true);
        assert_eq!(next().await, None);
    }
}
