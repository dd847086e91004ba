//! The `spin-host watch` tests' component, on plain wasi:http: `/` answers the greeting (the
//! line the tests edit), `/slow` answers it after a second, `/page` wraps it in HTML, and
//! `/file` answers `static/hello.txt`.

use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

const GREETING: &str = "version 1";

struct Greeter;

impl wasi::exports::http::incoming_handler::Guest for Greeter {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let (content_type, body) = match path.as_str() {
            "/slow" => {
                wasi::clocks::monotonic_clock::subscribe_duration(1_000_000_000).block();
                ("text/plain", GREETING.to_owned())
            }
            "/page" => ("text/html", format!("<!doctype html><html><body><p>{GREETING}</p></body></html>")),
            "/file" => (
                "text/plain",
                std::fs::read_to_string("/static/hello.txt").unwrap_or_else(|error| error.to_string()),
            ),
            _ => ("text/plain", GREETING.to_owned()),
        };
        let headers = Fields::from_list(&[("content-type".to_owned(), content_type.as_bytes().to_vec())])
            .expect("valid headers");
        let response = OutgoingResponse::new(headers);
        let outgoing = response.body().expect("a body");
        ResponseOutparam::set(out, Ok(response));
        let stream = outgoing.write().expect("a stream");
        stream.blocking_write_and_flush(body.as_bytes()).expect("written");
        drop(stream);
        OutgoingBody::finish(outgoing, None).expect("finished");
    }
}

wasi::http::proxy::export!(Greeter);
