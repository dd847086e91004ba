//! Serves the browser client. The app mounts `static/` (the stylesheet and script) at `/static`
//! and `templates/` (the pages) at `/templates` in this component's filesystem, and routes it a
//! wildcard. The request's `spin-path-info` (the part of the path below the route) names a file
//! of `static/`, or a page URL (`/tickets/<id>`, `/orders`, …, see `pages`) names a page, which
//! is its template in `templates/pages/` put in the shell of `templates/layout.html`.
//!
//! `GET` and `HEAD` only. Every response carries an `ETag`, so a browser revalidates with
//! `If-None-Match` and gets a bodiless 304 when nothing changed. Pages are revalidated on every
//! load and link their stylesheet and script by fingerprinted URL (`/app.js?v=<etag>`), which is
//! cached for a year. Text is gzipped for clients that accept it. A path that names no file is a
//! JSON 404 in the API's error format, never a fallback page, so a mistyped API URL does not come
//! back as HTML. (The home page, `/`, is rendered by the tickets component, which owns the
//! tickets it lists.)

mod pages;

use std::io::ErrorKind;

use spin_sdk::http::{Method, Request, Response};

const STATIC: &str = "/static";
const LAYOUT: &str = "/templates/layout.html";
const PAGES: &str = "/templates/pages";
const NOT_FOUND: &str = r#"{"errors":[{"message":"Not found"}]}"#;
const BAD_PATH: &str = r#"{"errors":[{"message":"Invalid path"}]}"#;
const METHOD_NOT_ALLOWED: &str = r#"{"errors":[{"message":"Method not allowed"}]}"#;

/// spin-sdk's export macro expands to `unsafe` ABI glue; this module is the one place it may.
#[allow(unsafe_code)]
mod entrypoint {
    use spin_sdk::http::{Request, Response};

    #[spin_sdk::http_component]
    fn serve(req: Request) -> Response {
        super::logged(&req)
    }
}

/// Serves the request under its request id, echoed in `x-request-id`, and writes its log line.
fn logged(req: &Request) -> Response {
    let started = std::time::Instant::now();
    log_line::set_component("static-files");
    let request_id =
        log_line::request_id_from(|name| req.header(name).and_then(|value| value.as_str()));
    log_line::with_request_id(Some(request_id.clone()), || {
        let mut response = serve(req);
        response.set_header("x-request-id", request_id.as_str());
        let method = format!("{:?}", req.method()).to_ascii_uppercase();
        let route = req
            .header("spin-matched-route")
            .and_then(|value| value.as_str());
        log_line::request(&method, req.path(), route, *response.status(), started);
        response
    })
}

fn serve(req: &Request) -> Response {
    let include_body = match req.method() {
        Method::Get => true,
        Method::Head => false,
        _ => {
            return Response::builder()
                .status(405)
                .header("allow", "GET, HEAD")
                .header("content-type", "application/json")
                .body(METHOD_NOT_ALLOWED)
                .build();
        }
    };
    // Spin always sets spin-path-info; the URI path is the fallback for a bare wasi:http host.
    let path_info = req
        .header("spin-path-info")
        .and_then(|value| value.as_str())
        .unwrap_or_else(|| req.path());
    let (contents, content_type) = match pages::page_name(path_info) {
        Some(name) => match read_page(name) {
            Some(html) => (html.into_bytes(), "text/html; charset=utf-8"),
            None => return error(404, NOT_FOUND),
        },
        None => {
            let Ok(path) = site::file_path(path_info) else {
                return error(400, BAD_PATH);
            };
            let Some((path, contents)) = read_file(format!("{STATIC}{path}")) else {
                return error(404, NOT_FOUND);
            };
            (contents, site::content_type(&path))
        }
    };
    let header = |name: &str| req.header(name).and_then(|value| value.as_str());
    let served = site::serve(
        contents,
        content_type,
        site::Conditions {
            query: req.query(),
            accept_encoding: header("accept-encoding").unwrap_or_default(),
            if_none_match: header("if-none-match"),
            include_body,
        },
    );
    let mut response = Response::builder();
    response.status(served.status);
    for (name, value) in served.headers {
        response.header(name, value);
    }
    response.body(served.body).build()
}

/// The page `name`, its stylesheet and script links fingerprinted.
fn read_page(name: &str) -> Option<String> {
    let layout = std::fs::read_to_string(LAYOUT).ok()?;
    let page = std::fs::read_to_string(format!("{PAGES}/{name}.html")).ok()?;
    let html = site::page(&layout, name, &page);
    Some(site::fingerprint_html(&html, |asset| {
        std::fs::read(format!("{STATIC}{asset}"))
            .ok()
            .map(|bytes| site::etag(&bytes))
    }))
}

/// Reads the file at `path`, or the `index.html` inside it if it is a directory. Returns the path
/// actually read, which decides the content type. Any failure to read counts as "no such file":
/// the mount is a read-only snapshot, so there is nothing else a client could do about it.
fn read_file(path: String) -> Option<(String, Vec<u8>)> {
    match std::fs::read(&path) {
        Ok(contents) => Some((path, contents)),
        Err(e) if e.kind() == ErrorKind::IsADirectory || is_dir(&path) => {
            let index = format!("{}/{}", path.trim_end_matches('/'), site::INDEX);
            std::fs::read(&index).ok().map(|contents| (index, contents))
        }
        Err(_) => None,
    }
}

fn is_dir(path: &str) -> bool {
    std::fs::metadata(path).is_ok_and(|metadata| metadata.is_dir())
}

fn error(status: u16, body: &'static str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body)
        .build()
}
