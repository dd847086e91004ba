//! HTTP routing and the `spin-*` request headers, as Spin routes and sets them.
//!
//! A route is a list of segments: literals, `:name` parameters (one non-empty segment each),
//! and an optional trailing wildcard (`/...`, or its synonym `/*`) that matches the prefix
//! itself and anything below it. Routes are ranked once, at build time, the way routefinder
//! ranks them: compared segment by segment from the left, the first differing segment decides
//! (literal beats `:param` beats wildcard); when one route is a longer copy of the other the
//! shorter wins; remaining ties go to the earlier declaration. Matching a request is then a
//! scan of the ranked list that stops at the first route that matches.
//!
//! Request paths are matched as they arrive: not percent-decoded, query already removed, all
//! leading and trailing `/` trimmed. A doubled slash inside the literal part fails to match;
//! inside the wildcard part it is kept.

use std::cmp::Ordering;
use std::fmt;

use crate::manifest::{HttpTrigger, LoadError, RouteSpec, StaticResponse};

/// What a matched route serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteTarget {
    Component(String),
    Static(StaticResponse),
}

/// A route string declared more than once; only the last declaration is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateRoute {
    pub route: String,
    /// Label (component id, or static-response trigger) of the declaration that is never used.
    pub loser: String,
    /// Label of the declaration that serves the route.
    pub winner: String,
}

impl fmt::Display for DuplicateRoute {
    /// The line Spin logs under `The following component routes are duplicates and will never
    /// be used:`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  {}: {} (duplicate of {})",
            self.loser, self.route, self.winner
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

impl Segment {
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
        }
    }
}

#[derive(Clone, Debug)]
struct CompiledRoute {
    raw: String,
    matched: String,
    component_route: String,
    segments: Vec<Segment>,
    wildcard: bool,
    label: String,
    target: RouteTarget,
}

impl CompiledRoute {
    fn parse(raw: &str, label: String, target: RouteTarget) -> Result<CompiledRoute, LoadError> {
        let with_slash = if raw.starts_with('/') {
            raw.to_string()
        } else {
            format!("/{raw}")
        };
        let matched = with_slash
            .strip_suffix('/')
            .unwrap_or(&with_slash)
            .to_string();
        let component_route = raw.strip_suffix("/...").unwrap_or(raw).to_string();

        let body = matched.strip_prefix('/').unwrap_or(&matched);
        let pieces: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').collect()
        };
        let mut segments = Vec::with_capacity(pieces.len());
        let mut wildcard = false;
        for (index, piece) in pieces.iter().enumerate() {
            let is_last = index + 1 == pieces.len();
            if *piece == "..." || *piece == "*" {
                if !is_last {
                    return Err(LoadError::new(format!(
                        "Error adding route for {label}: route {raw:?} has a wildcard that is not its last segment"
                    )));
                }
                wildcard = true;
            } else if let Some(name) = piece.strip_prefix(':') {
                if name.is_empty() {
                    return Err(LoadError::new(format!(
                        "Error adding route for {label}: route {raw:?} has a parameter without a name"
                    )));
                }
                segments.push(Segment::Param(name.to_string()));
            } else {
                segments.push(Segment::Literal((*piece).to_string()));
            }
        }
        Ok(CompiledRoute {
            raw: raw.to_string(),
            matched,
            component_route,
            segments,
            wildcard,
            label,
            target,
        })
    }

    /// Rank for comparison: one entry per segment, the wildcard last.
    fn ranks(&self) -> impl Iterator<Item = u8> + '_ {
        self.segments
            .iter()
            .map(Segment::rank)
            .chain(self.wildcard.then_some(2))
    }

    fn len(&self) -> usize {
        self.segments.len() + usize::from(self.wildcard)
    }

    fn precedence(&self, other: &CompiledRoute) -> Ordering {
        for (a, b) in self.ranks().zip(other.ranks()) {
            if a != b {
                return a.cmp(&b);
            }
        }
        self.len().cmp(&other.len())
    }

    /// Matches the trimmed path; on success returns the wildcard capture ("" without one) and
    /// leaves the parameter values in `params`.
    fn matches<'p>(&self, trimmed: &'p str, params: &mut Vec<&'p str>) -> Option<&'p str> {
        params.clear();
        let mut remaining = (!trimmed.is_empty()).then_some(trimmed);
        for segment in &self.segments {
            let text = remaining?;
            let (head, tail) = match text.split_once('/') {
                Some((head, tail)) => (head, Some(tail)),
                None => (text, None),
            };
            match segment {
                Segment::Literal(literal) if literal != head => return None,
                Segment::Literal(_) => {}
                Segment::Param(_) if head.is_empty() => return None,
                Segment::Param(_) => params.push(head),
            }
            remaining = tail;
        }
        match (self.wildcard, remaining) {
            (true, rest) => Some(rest.unwrap_or("")),
            (false, None) => Some(""),
            (false, Some(_)) => None,
        }
    }
}

/// The HTTP router of one application.
#[derive(Clone, Debug)]
pub struct Router {
    /// Deduplicated routes in declaration order (a duplicate keeps its first position).
    routes: Vec<CompiledRoute>,
    /// Indices into `routes`, best first.
    ranked: Vec<usize>,
}

fn trigger_label(trigger: &HttpTrigger) -> String {
    match (&trigger.component, &trigger.id) {
        (Some(component), _) => component.clone(),
        (None, Some(id)) => id.clone(),
        (None, None) => "static-response".to_string(),
    }
}

impl Router {
    /// Builds the router from the `[[trigger.http]]` entries. Private routes are skipped. A
    /// route string declared more than once is served by its last declaration, which keeps the
    /// position of the first (that position breaks precedence ties); the others are returned
    /// as duplicates.
    pub fn build(triggers: &[HttpTrigger]) -> Result<(Router, Vec<DuplicateRoute>), LoadError> {
        let mut routes: Vec<CompiledRoute> = Vec::new();
        let mut losers: Vec<(String, String)> = Vec::new();
        for trigger in triggers {
            let RouteSpec::Path(raw) = &trigger.route else {
                continue;
            };
            let label = trigger_label(trigger);
            let target = match (&trigger.component, &trigger.static_response) {
                (Some(component), None) => RouteTarget::Component(component.clone()),
                (None, Some(response)) => RouteTarget::Static(response.clone()),
                _ => {
                    return Err(LoadError::new(format!(
                        "route {raw:?} must have exactly one of 'component' or 'static_response'"
                    )));
                }
            };
            let compiled = CompiledRoute::parse(raw, label, target)?;
            match routes.iter_mut().find(|r| r.raw == compiled.raw) {
                Some(existing) => {
                    losers.push((existing.raw.clone(), existing.label.clone()));
                    *existing = compiled;
                }
                None => routes.push(compiled),
            }
        }
        let duplicates = losers
            .into_iter()
            .map(|(route, loser)| {
                let winner = routes
                    .iter()
                    .find(|r| r.raw == route)
                    .map(|r| r.label.clone())
                    .unwrap_or_default();
                DuplicateRoute {
                    route,
                    loser,
                    winner,
                }
            })
            .collect();
        let mut ranked: Vec<usize> = (0..routes.len()).collect();
        // Stable sort: equal precedence keeps declaration order.
        ranked.sort_by(|&a, &b| routes[a].precedence(&routes[b]));
        Ok((Router { routes, ranked }, duplicates))
    }

    /// Finds the best route for a request path (no query string).
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        let trimmed = path.trim_matches('/');
        let mut values: Vec<&str> = Vec::new();
        for &index in &self.ranked {
            let route = &self.routes[index];
            let Some(capture) = route.matches(trimmed, &mut values) else {
                continue;
            };
            let path_info = if !route.wildcard {
                String::new()
            } else {
                // Spin reports the wildcard with its leading slash and keeps a trailing slash
                // from the request, which trimming removed.
                match (capture.is_empty(), path.ends_with('/')) {
                    (true, false) => String::new(),
                    (true, true) => "/".to_string(),
                    (false, false) => format!("/{capture}"),
                    (false, true) => format!("/{capture}/"),
                }
            };
            let params = route
                .segments
                .iter()
                .filter_map(|s| match s {
                    Segment::Param(name) => Some(name.clone()),
                    Segment::Literal(_) => None,
                })
                .zip(values.iter().map(|v| (*v).to_string()))
                .collect();
            return Some(RouteMatch {
                target: &route.target,
                raw_route: &route.raw,
                matched_route: &route.matched,
                component_route: &route.component_route,
                path_info,
                params,
            });
        }
        None
    }

    /// `(label, route as written, is_wildcard)` for each served route, in declaration order.
    pub fn routes(&self) -> Vec<(String, String, bool)> {
        self.routes
            .iter()
            .map(|r| (r.label.clone(), r.raw.clone(), r.wildcard))
            .collect()
    }

    /// Served routes that start with the reserved `/.well-known/spin/` prefix and so can never
    /// be reached (Spin logs an error about them and starts anyway).
    pub fn reserved_conflicts(&self) -> Vec<(String, String)> {
        self.routes
            .iter()
            .filter(|r| r.matched.starts_with("/.well-known/spin/"))
            .map(|r| (r.label.clone(), r.raw.clone()))
            .collect()
    }
}

/// The result of routing one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    pub target: &'a RouteTarget,
    /// The route exactly as written (`spin-raw-component-route`).
    pub raw_route: &'a str,
    /// The route minus one trailing `/`; `""` for `/` (`spin-matched-route`).
    pub matched_route: &'a str,
    /// The raw route without a trailing `/...` (`spin-component-route`).
    pub component_route: &'a str,
    /// The wildcard part of the path (`spin-path-info`).
    pub path_info: String,
    /// `:name` parameters with their values, in route order.
    pub params: Vec<(String, String)>,
}

impl RouteMatch<'_> {
    /// The `spin-*` headers Spin appends to the request, in order. `full_url` is
    /// `<scheme>://<Host header or localhost><path+query>`; `client_addr` is the peer `ip:port`.
    pub fn spin_headers(&self, full_url: &str, client_addr: &str) -> Vec<(String, String)> {
        let mut headers = vec![
            ("spin-full-url".to_string(), full_url.to_string()),
            ("spin-path-info".to_string(), self.path_info.clone()),
            (
                "spin-matched-route".to_string(),
                self.matched_route.to_string(),
            ),
            (
                "spin-raw-component-route".to_string(),
                self.raw_route.to_string(),
            ),
            (
                "spin-component-route".to_string(),
                self.component_route.to_string(),
            ),
            ("spin-base-path".to_string(), "/".to_string()),
            ("spin-client-addr".to_string(), client_addr.to_string()),
        ];
        headers.extend(
            self.params
                .iter()
                .map(|(name, value)| (path_match_header(name), value.clone())),
        );
        headers
    }
}

/// `spin-path-match-<name>`: Spin upper-cases the name into `SPIN_PATH_MATCH_<NAME>` and the
/// header conversion turns `_` into `-` and lower-cases it.
pub fn path_match_header(name: &str) -> String {
    format!(
        "spin-path-match-{}",
        name.to_ascii_lowercase().replace('_', "-")
    )
}

/// The `spin-*` headers of a service-chained request (`http://<id>.spin.internal<path>`), which
/// skips routing: the whole path is the path-info and the route is a bare wildcard.
pub fn service_chaining_headers(path_and_query: &str) -> Vec<(String, String)> {
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path);
    vec![
        (
            "spin-full-url".to_string(),
            format!("http://localhost{path_and_query}"),
        ),
        ("spin-path-info".to_string(), path.to_string()),
        ("spin-matched-route".to_string(), "/...".to_string()),
        ("spin-raw-component-route".to_string(), "/...".to_string()),
        ("spin-component-route".to_string(), String::new()),
        ("spin-base-path".to_string(), "/".to_string()),
        ("spin-client-addr".to_string(), "0.0.0.0:0".to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(route: &str, component: &str) -> HttpTrigger {
        HttpTrigger {
            id: None,
            route: RouteSpec::Path(route.to_string()),
            component: Some(component.to_string()),
            static_response: None,
        }
    }

    fn router(routes: &[(&str, &str)]) -> Router {
        let triggers: Vec<HttpTrigger> = routes.iter().map(|(r, c)| trigger(r, c)).collect();
        Router::build(&triggers).expect("routes build").0
    }

    fn served_by(router: &Router, path: &str) -> Option<String> {
        router.route(path).map(|m| match m.target {
            RouteTarget::Component(id) => id.clone(),
            RouteTarget::Static(_) => "static".to_string(),
        })
    }

    /// (routes in declaration order, request path, expected component)
    type PrecedenceCase = (
        &'static [(&'static str, &'static str)],
        &'static str,
        Option<&'static str>,
    );

    #[test]
    fn route_precedence_follows_routefinder() {
        // (routes in declaration order, request path, expected component)
        let cases: &[PrecedenceCase] = &[
            (
                &[
                    ("/api/tickets/...", "wild"),
                    ("/api/tickets/exact", "exact"),
                ],
                "/api/tickets/exact",
                Some("exact"),
            ),
            (
                &[
                    ("/api/tickets/exact", "exact"),
                    ("/api/tickets/...", "wild"),
                ],
                "/api/tickets/exact",
                Some("exact"),
            ),
            (
                &[
                    ("/api/tickets/...", "wild"),
                    ("/api/tickets/exact", "exact"),
                ],
                "/api/tickets/exact//",
                Some("exact"),
            ),
            (
                &[
                    ("/api/tickets/...", "wild"),
                    ("/api/tickets/exact", "exact"),
                ],
                "/api/tickets/other",
                Some("wild"),
            ),
            (
                &[("/one/...", "short"), ("/one/two/...", "long")],
                "/one/two/three",
                Some("long"),
            ),
            (
                &[("/one/two/...", "long"), ("/one/...", "short")],
                "/one/three",
                Some("short"),
            ),
            (
                &[("/:x/b", "param"), ("/a/...", "wild")],
                "/a/b",
                Some("wild"),
            ),
            (
                &[("/a/...", "wild"), ("/:x/b", "param")],
                "/a/b",
                Some("wild"),
            ),
            (
                &[("/a/...", "wild"), ("/:x/b", "param")],
                "/c/b",
                Some("param"),
            ),
            (
                &[("/api/:id", "param"), ("/api/me", "me")],
                "/api/me",
                Some("me"),
            ),
            (
                &[("/api/:id", "param"), ("/api/...", "wild")],
                "/api/42",
                Some("param"),
            ),
            (
                &[("/api/:id", "param"), ("/api/...", "wild")],
                "/api/42/x",
                Some("wild"),
            ),
            (&[("/:a", "first"), ("/:b", "second")], "/x", Some("first")),
            (&[("/:b", "second"), ("/:a", "first")], "/x", Some("second")),
            (&[("/...", "catch"), ("/", "root")], "/", Some("root")),
            (&[("/...", "catch"), ("/", "root")], "/x", Some("catch")),
            (&[("/", "root")], "/x", None),
            (&[("/", "root")], "", Some("root")),
            (
                &[("/api/tickets", "exact"), ("/api/tickets/...", "wild")],
                "/api/tickets",
                Some("exact"),
            ),
            (
                &[("/api/tickets/...", "wild")],
                "/api/tickets",
                Some("wild"),
            ),
            (&[("/api/tickets/...", "wild")], "/api/ticketsx", None),
            (&[("/api/tickets/...", "wild")], "//api//tickets/x", None),
            (&[("/slash/", "slash")], "/slash", Some("slash")),
            (&[("/slash", "slash")], "/slash/", Some("slash")),
            (&[("/a", "a")], "/a/b", None),
            (&[("/api/:id/x", "p")], "/api//x", None),
            (&[("/files/*", "star")], "/files/a/b", Some("star")),
            (&[("nolead", "n")], "/nolead", Some("n")),
            (&[("/a%20b", "enc")], "/a%20b", Some("enc")),
            (&[("/a%20b", "enc")], "/a b", None),
        ];
        for (routes, path, expected) in cases {
            let r = router(routes);
            assert_eq!(
                served_by(&r, path).as_deref(),
                *expected,
                "routes {routes:?}, path {path:?}"
            );
        }
    }

    #[test]
    fn declaration_order_does_not_change_which_route_wins() {
        let routes = [
            ("/api/tickets/exact", "exact"),
            ("/api/tickets/...", "tickets"),
            ("/api/:id", "id"),
            ("/api/...", "api"),
            ("/one/two/...", "two"),
            ("/one/...", "one"),
            ("/", "root"),
            ("/...", "catch"),
        ];
        let paths = [
            "/",
            "/x",
            "/api",
            "/api/1",
            "/api/1/2",
            "/api/tickets",
            "/api/tickets/exact",
            "/api/tickets/exact/more",
            "/one",
            "/one/two",
            "/one/three/two",
            "/one/two/three",
        ];
        let baseline = router(&routes);
        let expected: Vec<Option<String>> = paths.iter().map(|p| served_by(&baseline, p)).collect();
        for shift in 1..routes.len() {
            let mut reordered = routes.to_vec();
            reordered.rotate_left(shift);
            if shift % 2 == 1 {
                reordered.reverse();
            }
            let r = router(&reordered);
            let got: Vec<Option<String>> = paths.iter().map(|p| served_by(&r, p)).collect();
            assert_eq!(got, expected, "order {reordered:?}");
        }
        assert_eq!(
            expected
                .iter()
                .map(|e| e.as_deref().unwrap_or("-"))
                .collect::<Vec<_>>(),
            [
                "root", "catch", "api", "id", "api", "tickets", "exact", "tickets", "one", "two",
                "one", "two",
            ]
        );
    }

    #[test]
    fn path_info_is_the_wildcard_part_with_spins_slash_rules() {
        let r = router(&[("/api/tickets/...", "t"), ("/exact", "e"), ("/...", "root")]);
        let cases = [
            ("/api/tickets/abc", "/abc"),
            ("/api/tickets", ""),
            ("/api/tickets/", "/"),
            ("/api/tickets/abc/", "/abc/"),
            ("/api/tickets//x", "//x"),
            ("/api/tickets/a/b", "/a/b"),
            ("/exact", ""),
            ("/exact/", ""),
            ("/", "/"),
            ("/other", "/other"),
        ];
        for (path, info) in cases {
            let m = r.route(path).expect(path);
            assert_eq!(m.path_info, info, "{path}");
        }
    }

    #[test]
    fn headers_match_the_documented_example() {
        let r = router(&[("/api/tickets/...", "tickets")]);
        let m = r.route("/api/tickets/abc").expect("matches");
        let headers = m.spin_headers(
            "http://127.0.0.1:3991/api/tickets/abc?x=1",
            "127.0.0.1:34638",
        );
        let expected = [
            ("spin-full-url", "http://127.0.0.1:3991/api/tickets/abc?x=1"),
            ("spin-path-info", "/abc"),
            ("spin-matched-route", "/api/tickets/..."),
            ("spin-raw-component-route", "/api/tickets/..."),
            ("spin-component-route", "/api/tickets"),
            ("spin-base-path", "/"),
            ("spin-client-addr", "127.0.0.1:34638"),
        ];
        let got: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn route_strings_map_to_matched_raw_and_component_routes() {
        // (route, matched, component)
        let cases = [
            ("/", "", "/"),
            ("/...", "/...", ""),
            ("/slash/", "/slash", "/slash/"),
            ("/api/tickets/...", "/api/tickets/...", "/api/tickets"),
            ("/files/*", "/files/*", "/files/*"),
            ("/api/:id", "/api/:id", "/api/:id"),
        ];
        for (route, matched, component) in cases {
            let r = router(&[(route, "c")]);
            let m = r
                .route(&route.replace("...", "x").replace(":id", "1"))
                .expect(route);
            assert_eq!(m.raw_route, route);
            assert_eq!(m.matched_route, matched, "{route}");
            assert_eq!(m.component_route, component, "{route}");
        }
    }

    #[test]
    fn parameters_become_path_match_headers() {
        let r = router(&[("/api/:id/x/:user_id/:camelCase", "p")]);
        let m = r.route("/api/foo/x/bar/Baz").expect("matches");
        assert_eq!(
            m.params,
            [
                ("id".to_string(), "foo".to_string()),
                ("user_id".to_string(), "bar".to_string()),
                ("camelCase".to_string(), "Baz".to_string()),
            ]
        );
        let headers = m.spin_headers("http://localhost/api/foo/x/bar/Baz", "1.2.3.4:5");
        let tail: Vec<(&str, &str)> = headers[7..]
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            tail,
            [
                ("spin-path-match-id", "foo"),
                ("spin-path-match-user-id", "bar"),
                ("spin-path-match-camelcase", "Baz"),
            ]
        );
    }

    #[test]
    fn the_last_declaration_of_a_duplicate_route_wins_and_losers_are_reported() {
        let triggers = [
            trigger("/foo", "first"),
            trigger("/bar", "bar"),
            trigger("/foo", "second"),
            trigger("/foo/", "slashed"),
            trigger("/foo", "third"),
        ];
        let (r, duplicates) = Router::build(&triggers).expect("builds");
        assert_eq!(
            duplicates,
            [
                DuplicateRoute {
                    route: "/foo".into(),
                    loser: "first".into(),
                    winner: "third".into()
                },
                DuplicateRoute {
                    route: "/foo".into(),
                    loser: "second".into(),
                    winner: "third".into()
                },
            ]
        );
        assert_eq!(
            duplicates[0].to_string(),
            "  first: /foo (duplicate of third)"
        );
        // "/foo" and "/foo/" are different strings, so both stay; "/foo" was declared first.
        assert_eq!(served_by(&r, "/foo").as_deref(), Some("third"));
        assert_eq!(
            r.routes(),
            [
                ("third".to_string(), "/foo".to_string(), false),
                ("bar".to_string(), "/bar".to_string(), false),
                ("slashed".to_string(), "/foo/".to_string(), false),
            ]
        );
    }

    #[test]
    fn private_routes_are_skipped_and_static_responses_are_served() {
        let response = StaticResponse {
            status_code: 418,
            headers: vec![],
            body: Some("tea".into()),
        };
        let triggers = [
            HttpTrigger {
                id: None,
                route: RouteSpec::Private,
                component: Some("hidden".into()),
                static_response: None,
            },
            HttpTrigger {
                id: Some("teapot".into()),
                route: RouteSpec::Path("/tea".into()),
                component: None,
                static_response: Some(response.clone()),
            },
            trigger("/...", "wild"),
        ];
        let (r, _) = Router::build(&triggers).expect("builds");
        assert_eq!(
            r.route("/tea").expect("matches").target,
            &RouteTarget::Static(response)
        );
        assert_eq!(
            r.routes(),
            [
                ("teapot".to_string(), "/tea".to_string(), false),
                ("wild".to_string(), "/...".to_string(), true)
            ]
        );
    }

    #[test]
    fn malformed_routes_are_rejected() {
        for bad in ["/a/.../b", "/a/*/b", "/a/:"] {
            assert!(Router::build(&[trigger(bad, "c")]).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_under_the_reserved_prefix_are_reported() {
        let r = router(&[
            ("/.well-known/spin/...", "a"),
            ("/.well-known/other", "b"),
            ("/.well-known/spin/info", "c"),
            ("/.well-known/spin", "d"),
        ]);
        assert_eq!(
            r.reserved_conflicts(),
            [
                ("a".to_string(), "/.well-known/spin/...".to_string()),
                ("c".to_string(), "/.well-known/spin/info".to_string()),
            ]
        );
    }

    #[test]
    fn service_chained_requests_get_wildcard_headers() {
        let headers = service_chaining_headers("/api/x?y=1");
        let got: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("spin-full-url", "http://localhost/api/x?y=1"),
                ("spin-path-info", "/api/x"),
                ("spin-matched-route", "/..."),
                ("spin-raw-component-route", "/..."),
                ("spin-component-route", ""),
                ("spin-base-path", "/"),
                ("spin-client-addr", "0.0.0.0:0"),
            ]
        );
    }
}
