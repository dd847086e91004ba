//! Serves the browser client. The app mounts `static/` at `/` in this component's filesystem
//! (`files = [{ source = "static", destination = "/" }]`) and routes it a wildcard; the request's
//! `spin-path-info` (the part of the path below the route) names the file.
//!
//! `GET` and `HEAD` only. Directories serve their `index.html`. Every file carries an `ETag` so a
//! browser revalidates with `If-None-Match` and gets a bodiless 304 when nothing changed. A path
//! that names no file is a JSON 404 in the API's error format, never a fallback page, so a
//! mistyped API URL does not come back as HTML.

mod asset;

use std::io::ErrorKind;

use spin_sdk::http::{Method, Request, Response};

const NOT_FOUND: &str = r#"{"errors":[{"message":"Not found"}]}"#;
const BAD_PATH: &str = r#"{"errors":[{"message":"Invalid path"}]}"#;
const METHOD_NOT_ALLOWED: &str = r#"{"errors":[{"message":"Method not allowed"}]}"#;

/// spin-sdk's export macro expands to `unsafe` ABI glue; this module is the one place it may.
#[allow(unsafe_code)]
mod entrypoint {
    use spin_sdk::http::{Request, Response};

    #[spin_sdk::http_component]
    fn serve(req: Request) -> Response {
        super::serve(&req)
    }
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
    let Ok(path) = asset::file_path(path_info) else {
        return error(400, BAD_PATH);
    };
    let Some((path, contents)) = read_file(path) else {
        return error(404, NOT_FOUND);
    };

    let etag = asset::etag(&contents);
    let unchanged = req
        .header("if-none-match")
        .and_then(|value| value.as_str())
        .is_some_and(|header| asset::if_none_match(header, &etag));
    let mut response = Response::builder();
    response
        .header("etag", etag)
        .header("cache-control", asset::cache_control(&path));
    if unchanged {
        return response.status(304).build();
    }
    response
        .status(200)
        .header("content-type", asset::content_type(&path));
    if include_body {
        response.body(contents);
    }
    response.build()
}

/// Reads the file at `path`, or the `index.html` inside it if it is a directory. Returns the path
/// actually read, which decides the content type. Any failure to read counts as "no such file":
/// the mount is a read-only snapshot, so there is nothing else a client could do about it.
fn read_file(path: String) -> Option<(String, Vec<u8>)> {
    match std::fs::read(&path) {
        Ok(contents) => Some((path, contents)),
        Err(e) if e.kind() == ErrorKind::IsADirectory || is_dir(&path) => {
            let index = format!("{}/{}", path.trim_end_matches('/'), asset::INDEX);
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
