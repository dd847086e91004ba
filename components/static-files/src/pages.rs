//! The browser client's page URLs and the page that serves each: its template is
//! `templates/pages/<name>.html`. A page that shows one ticket or one order is one page for every
//! id; its script reads the id from the URL.

/// The name of the page that `path` (`spin-path-info`) shows, if it is a page URL.
pub fn page_name(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    Some(match segments.as_slice() {
        ["auth", "signup"] => "signup",
        ["auth", "signin"] => "signin",
        ["auth", "signout"] => "signout",
        ["tickets", "new"] => "sell",
        ["tickets", "mine"] => "mine",
        ["tickets", id, "edit"] if is_id(id) => "edit",
        ["tickets", id, "pass"] if is_id(id) => "pass",
        ["tickets", id] if is_id(id) => "ticket",
        ["orders"] => "orders",
        ["orders", id] if is_id(id) => "order",
        ["scan"] => "scan",
        _ => return None,
    })
}

/// Looks like an id (the page itself says "not found" for one that names nothing): no dot, so
/// a file name such as `/tickets/x.png` is never taken for one.
fn is_id(segment: &str) -> bool {
    !segment.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_urls_name_their_files() {
        let id = "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f";
        let cases = [
            ("/auth/signup", Some("signup")),
            ("/auth/signin/", Some("signin")),
            ("/auth/signout", Some("signout")),
            ("/tickets/new", Some("sell")),
            ("/tickets/mine", Some("mine")),
            (&format!("/tickets/{id}"), Some("ticket")),
            (&format!("/tickets/{id}/edit"), Some("edit")),
            (&format!("/tickets/{id}/pass"), Some("pass")),
            ("/scan", Some("scan")),
            ("/sw.js", None),
            ("/orders", Some("orders")),
            (&format!("/orders/{id}"), Some("order")),
            ("ticket", None),
            ("/app.css", None),
            ("/", None),
            ("/tickets", None),
            ("/orders/a/b", None),
        ];
        for (path, expected) in cases {
            assert_eq!(page_name(path), expected, "{path}");
        }
    }
}
