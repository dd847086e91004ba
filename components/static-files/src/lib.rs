//! Serves the browser client. The app routes it a wildcard; the request's `spin-path-info` (the
//! part of the path below the route) names a file of `static/`, or a page URL (`/tickets/<id>`,
//! `/orders`, …, see `pages`) names a page, which is its template in `templates/pages/` put in
//! the shell of `templates/layout.html`.
//!
//! Both are embedded in the component when it is built (`site-assets`), rendered, tagged and
//! gzipped, so a request reads no file and hashes nothing. Built with the `files` feature it
//! reads them from files spin.toml mounts instead (`mounted`), as it did before; the answers are
//! the same.
//!
//! `GET` and `HEAD` only. Every response carries an `ETag`, so a browser revalidates with
//! `If-None-Match` and gets a bodiless 304 when nothing changed. Pages are revalidated on every
//! load and link their stylesheet and script by fingerprinted URL (`/app.js?v=<etag>`), which is
//! cached for a year. Text is gzipped for clients that accept it. A path that names no file is a
//! JSON 404 in the API's error format, never a fallback page, so a mistyped API URL does not come
//! back as HTML. (The home page, `/`, is rendered by the tickets component, which owns the
//! tickets it lists.)

mod mounted;
mod pages;

use std::path::Path;

use api::{ApiError, Method, Request, Response};

spin_adapter::http_component!("static-files", serve);

fn serve(request: &Request) -> anyhow::Result<Response> {
    Ok(respond(request))
}

fn respond(request: &Request) -> Response {
    let include_body = match request.method {
        Method::Get => true,
        Method::Head => false,
        _ => return ApiError::MethodNotAllowed { allow: "GET, HEAD" }.into_response(),
    };
    // Spin always sets spin-path-info; the URI path is the fallback for a bare wasi:http host.
    let path_info = request
        .header("spin-path-info")
        .unwrap_or(request.path.as_str());
    let Ok(target) = Target::of(path_info) else {
        return ApiError::BadRequest("Invalid path".to_owned()).into_response();
    };
    let conditions = site::Conditions {
        query: &request.query,
        accept_encoding: request.header("accept-encoding").unwrap_or_default(),
        if_none_match: request.header("if-none-match"),
        include_body,
    };
    let served = if cfg!(feature = "files") {
        mounted::find(Path::new(mounted::MOUNT_ROOT), &target)
            .map(|contents| site::serve(&contents.resource(), conditions))
    } else {
        embedded(&target).map(|resource| site::serve(resource, conditions))
    };
    match served {
        Some(served) => Response {
            status: served.status,
            headers: served
                .headers
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            body: served.body,
        },
        None => ApiError::NotFound.into_response(),
    }
}

/// What a request path names: a page, or a file of `static/` by its path below it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Page(&'static str),
    File(String),
}

impl Target {
    fn of(path_info: &str) -> Result<Self, site::PathError> {
        match pages::page_name(path_info) {
            Some(name) => Ok(Self::Page(name)),
            None => site::file_path(path_info).map(Self::File),
        }
    }
}

/// What `target` names among the embedded pages and files. A directory has no entry of its own:
/// its `index.html` has, as when it is read from files.
fn embedded(target: &Target) -> Option<&'static site::Resource<'static>> {
    match target {
        Target::Page(name) => site_assets::page(name),
        Target::File(path) => site_assets::asset(path).or_else(|| {
            site_assets::asset(&format!("{}/{}", path.trim_end_matches('/'), site::INDEX))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer for `path_info` from the embedded site and from the workspace's own
    /// `static/` and `templates/`, read as the `files` build reads its mount.
    fn both_answers(
        path_info: &str,
        request: site::Conditions<'_>,
    ) -> (Option<site::Served>, Option<site::Served>) {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let target = Target::of(path_info).expect("a valid path");
        let embedded = embedded(&target).map(|resource| site::serve(resource, request));
        let mounted = mounted::find(&workspace, &target)
            .map(|contents| site::serve(&contents.resource(), request));
        (embedded, mounted)
    }

    #[test]
    fn the_embedded_site_answers_as_the_mounted_files_do() {
        let id = "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f";
        let paths = [
            "/app.css".to_owned(),
            "/app.js".to_owned(),
            "/api/openapi.json".to_owned(),
            "/api".to_owned(),
            "/missing.css".to_owned(),
            "/auth/signin".to_owned(),
            "/tickets/new".to_owned(),
            format!("/tickets/{id}/edit"),
            format!("/orders/{id}"),
        ];
        let get = site::Conditions {
            include_body: true,
            ..site::Conditions::default()
        };
        for path in &paths {
            let (plain, _) = both_answers(path, get);
            let tag = plain.and_then(|served| {
                let (_, tag) = served
                    .headers
                    .into_iter()
                    .find(|(name, _)| *name == "etag")?;
                Some(tag)
            });
            let fingerprint = format!("v={}", tag.as_deref().unwrap_or("").trim_matches('"'));
            for request in [
                get,
                site::Conditions {
                    include_body: false,
                    ..get
                },
                site::Conditions {
                    if_none_match: tag.as_deref(),
                    ..get
                },
                site::Conditions {
                    query: &fingerprint,
                    ..get
                },
            ] {
                let (embedded, mounted) = both_answers(path, request);
                assert_eq!(embedded, mounted, "{path} {request:?}");
            }
            // Gzip differs in its bytes (the embedded one is compressed harder), never its tags.
            let gzip = site::Conditions {
                accept_encoding: "gzip",
                ..get
            };
            let (embedded, mounted) = both_answers(path, gzip);
            let headers = |served: Option<site::Served>| served.map(|served| served.headers);
            assert_eq!(headers(embedded), headers(mounted), "{path} with gzip");
        }
    }

    #[test]
    fn paths_name_pages_or_files_and_malformed_ones_neither() {
        assert_eq!(Target::of("/orders"), Ok(Target::Page("orders")));
        assert_eq!(
            Target::of("/app.css"),
            Ok(Target::File("/app.css".to_owned()))
        );
        assert_eq!(Target::of("/../x"), Err(site::PathError::Forbidden));
    }
}
