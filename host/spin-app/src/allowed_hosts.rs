//! `allowed_outbound_hosts`, read as Spin reads it.
//!
//! Each entry is `scheme://host[:port]` with an optional single trailing `/`:
//! - scheme: letters, or `*`;
//! - host: a domain or IP literal, `*`, `*.example.com` (subdomains only), a CIDR
//!   (`10.0.0.0/8`), `self` / `self.alt`, or a bracketed IPv6 literal (`[::1]`);
//! - port: omitted (the scheme's well-known port; other schemes must give one), `*`, a single
//!   port, or a half-open range `a..b`.
//!
//! Entries are rendered from their templates before they reach [`AllowedHosts::parse`]; an
//! entry that renders to `""`, `http://` or `https://` is skipped, as in Spin 4.x.

use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
enum SchemeRule {
    Any,
    Named(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostRule {
    Any,
    /// `*.example.com`, stored as `.example.com`: matches strict subdomains only.
    Subdomains(String),
    Domain(String),
    Ip(IpAddr),
    Cidr(IpAddr, u8),
    /// `self` / `self.alt`: relative URLs, i.e. requests to Spin's own listener.
    ToSelf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PortRule {
    Any,
    Single(u16),
    /// Half-open: `start..end` allows `start` up to but not including `end`.
    Range(u16, u16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    scheme: SchemeRule,
    host: HostRule,
    port: PortRule,
}

/// A component's parsed `allowed_outbound_hosts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    rules: Vec<Rule>,
}

/// The port Spin assumes for a scheme when an entry or URL gives none.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        "redis" => Some(6379),
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "mqtt" => Some(1883),
        _ => None,
    }
}

impl AllowedHosts {
    /// Parses rendered entries. The error names the offending entry.
    pub fn parse(entries: &[String]) -> Result<AllowedHosts, String> {
        let mut rules = Vec::new();
        for entry in entries {
            if let Some(rule) = parse_entry(entry)? {
                rules.push(rule);
            }
        }
        Ok(AllowedHosts { rules })
    }

    /// True when no entry allows anything.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a connection to `scheme://host[:port]` is allowed. `port: None` means the
    /// scheme's default port. `host` may be a domain, an IP, or a bracketed IPv6 literal; the
    /// host `self.alt` (or `self`) is a request to Spin itself and is allowed only by
    /// [`allows_relative`](Self::allows_relative).
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        if host == "self" || host == "self.alt" {
            return self.allows_relative_for(&scheme);
        }
        let port = port.or_else(|| default_port(&scheme));
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host);
        let ip: Option<IpAddr> = bare.parse().ok();
        self.rules.iter().any(|rule| {
            scheme_matches(&rule.scheme, &scheme)
                && host_matches(&rule.host, bare, ip)
                && port_matches(&rule.port, port)
        })
    }

    /// Whether `url` is allowed. `scheme://[user@]host[:port][/path]`; a URL that starts with
    /// `/` is relative (a self request). Anything else without a scheme is denied.
    pub fn allows_url(&self, url: &str) -> bool {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.starts_with('/') && self.allows_relative();
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        let Some((host, port)) = split_host_port(host_port) else {
            return false;
        };
        if host.is_empty() {
            return false;
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(p) => Some(p),
                Err(_) => return false,
            },
        };
        self.allows(scheme, host, port)
    }

    /// Whether relative URLs (requests to Spin's own listener) are allowed: an `http`/`https`
    /// (or `*`) entry whose host is `self`, `self.alt` or `*`.
    pub fn allows_relative(&self) -> bool {
        self.allows_relative_for("http") || self.allows_relative_for("https")
    }

    fn allows_relative_for(&self, scheme: &str) -> bool {
        self.rules.iter().any(|rule| {
            scheme_matches(&rule.scheme, scheme)
                && matches!(rule.host, HostRule::ToSelf | HostRule::Any)
        })
    }

    /// Whether `http://<component_id>.spin.internal` is allowed.
    pub fn allows_service_chaining(&self, component_id: &str) -> bool {
        self.allows("http", &format!("{component_id}.spin.internal"), None)
    }

    /// Whether some entry names a `*.spin.internal` host, i.e. the component needs service
    /// chaining (which only the HTTP trigger provides).
    pub fn mentions_service_chaining(&self) -> bool {
        self.rules.iter().any(|rule| match &rule.host {
            HostRule::Subdomains(suffix) => suffix == ".spin.internal",
            HostRule::Domain(domain) => domain.ends_with(".spin.internal"),
            _ => false,
        })
    }
}

fn scheme_matches(rule: &SchemeRule, scheme: &str) -> bool {
    match rule {
        SchemeRule::Any => true,
        SchemeRule::Named(name) => name == scheme,
    }
}

fn host_matches(rule: &HostRule, host: &str, ip: Option<IpAddr>) -> bool {
    match rule {
        HostRule::Any => true,
        HostRule::Subdomains(suffix) => {
            host.len() > suffix.len() && host.ends_with(suffix.as_str())
        }
        HostRule::Domain(domain) => domain == host,
        HostRule::Ip(allowed) => ip == Some(*allowed),
        HostRule::Cidr(network, prefix) => ip.is_some_and(|ip| in_network(ip, *network, *prefix)),
        HostRule::ToSelf => false,
    }
}

fn port_matches(rule: &PortRule, port: Option<u16>) -> bool {
    match (rule, port) {
        (PortRule::Any, _) => true,
        (PortRule::Single(p), Some(port)) => *p == port,
        (PortRule::Range(start, end), Some(port)) => *start <= port && port < *end,
        (_, None) => false,
    }
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Splits `host[:port]`, understanding `[v6]:port`. `None` when brackets are unbalanced.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if s.starts_with('[') {
        let close = s.find(']')?;
        // An IPv6 CIDR (`[fd00::]/16`) keeps its prefix length as part of the host.
        let host_end = match s[close + 1..].strip_prefix('/') {
            Some(after) => close + 2 + after.find(':').unwrap_or(after.len()),
            None => close + 1,
        };
        let host = &s[..host_end];
        let rest = &s[host_end..];
        if rest.is_empty() {
            return Some((host, None));
        }
        return rest.strip_prefix(':').map(|port| (host, Some(port)));
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port))),
        None => Some((s, None)),
    }
}

fn parse_entry(entry: &str) -> Result<Option<Rule>, String> {
    let trimmed = entry.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed == "insecure:allow-all" {
        return Err(format!(
            "{entry:?} is not allowed in allowed_outbound_hosts: to allow every host use '*://*:*' (not recommended)"
        ));
    }
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Err(format!(
            "{entry:?} does not contain a scheme (e.g., 'http://' or '*://')"
        ));
    };
    let scheme = parse_scheme(entry, scheme)?;
    if rest.is_empty() {
        // Spin 4.x skips an entry whose template rendered only the scheme.
        if matches!(&scheme, SchemeRule::Named(s) if s == "http" || s == "https") {
            return Ok(None);
        }
        return Err(format!("{entry:?} has no host"));
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let Some((host, port)) = split_host_port(rest) else {
        return Err(format!("{entry:?} has an unterminated IPv6 address"));
    };
    if host.contains(['{', '}']) || port.is_some_and(|p| p.contains(['{', '}'])) {
        return Err(format!(
            "{entry:?}: lists in braces are not supported; give one entry per host"
        ));
    }
    if port.is_some_and(|p| p.contains('/')) {
        return Err(format!("{entry:?} has a path but is not allowed to"));
    }
    let host = parse_host(entry, host)?;
    let port = parse_port(entry, port, &scheme)?;
    Ok(Some(Rule { scheme, host, port }))
}

fn parse_scheme(entry: &str, scheme: &str) -> Result<SchemeRule, String> {
    if scheme == "*" {
        return Ok(SchemeRule::Any);
    }
    if scheme.is_empty() {
        return Err(format!("{entry:?} has an empty scheme"));
    }
    if let Some(bad) = scheme.chars().find(|c| !c.is_ascii_alphabetic()) {
        return Err(format!(
            "{entry:?}: scheme {scheme:?} contains invalid character {bad:?}"
        ));
    }
    Ok(SchemeRule::Named(scheme.to_ascii_lowercase()))
}

fn parse_host(entry: &str, host: &str) -> Result<HostRule, String> {
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        return Err(format!("{entry:?} has no host"));
    }
    if host == "*" {
        return Ok(HostRule::Any);
    }
    if host == "self" || host == "self.alt" {
        return Ok(HostRule::ToSelf);
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains('*') || suffix.contains('/') {
            return Err(format!("{entry:?} has an invalid wildcard host"));
        }
        return Ok(HostRule::Subdomains(format!(".{suffix}")));
    }
    if host.contains('*') {
        return Err(format!(
            "{entry:?}: a wildcard host must be '*' or start with '*.'"
        ));
    }
    if let Some((address, prefix)) = host.split_once('/') {
        let address = address
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(address);
        let (Ok(address), Ok(prefix)) = (address.parse::<IpAddr>(), prefix.parse::<u8>()) else {
            return Err(format!("{entry:?} has a path but is not allowed to"));
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!(
                "{entry:?}: CIDR prefix length {prefix} is too long"
            ));
        }
        return Ok(HostRule::Cidr(address, prefix));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').unwrap_or(inner);
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|ip| HostRule::Ip(IpAddr::V6(ip)))
            .map_err(|_| format!("{entry:?} has an invalid IPv6 address"));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostRule::Ip(ip));
    }
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "{entry:?}: host contains invalid character {bad:?}"
        ));
    }
    Ok(HostRule::Domain(host))
}

fn parse_port(entry: &str, port: Option<&str>, scheme: &SchemeRule) -> Result<PortRule, String> {
    let Some(port) = port else {
        let SchemeRule::Named(name) = scheme else {
            return Err(format!(
                "{entry:?}: no port was provided and the scheme \"*\" does not have a known default port number"
            ));
        };
        return default_port(name).map(PortRule::Single).ok_or_else(|| {
            format!(
                "{entry:?}: no port was provided and the scheme {name:?} does not have a known default port number"
            )
        });
    };
    if port == "*" {
        return Ok(PortRule::Any);
    }
    let number = |text: &str| {
        text.parse::<u16>()
            .map_err(|_| format!("{entry:?}: invalid port {port:?}"))
    };
    if let Some((start, end)) = port.split_once("..") {
        let (start, end) = (number(start)?, number(end)?);
        if start >= end {
            return Err(format!("{entry:?}: port range {port:?} is empty"));
        }
        return Ok(PortRule::Range(start, end));
    }
    number(port).map(PortRule::Single)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
            .expect("entries parse")
    }

    #[test]
    fn a_half_open_port_range_excludes_its_end() {
        let h = hosts(&["http://127.0.0.1:3990..3992"]);
        assert!(h.allows("http", "127.0.0.1", Some(3990)));
        assert!(h.allows("http", "127.0.0.1", Some(3991)));
        assert!(!h.allows("http", "127.0.0.1", Some(3992)));
        assert!(!h.allows("http", "127.0.0.1", Some(3989)));
    }

    #[test]
    fn omitted_ports_default_by_scheme_on_both_sides() {
        let cases = [
            ("http://example.com", "http", 80),
            ("https://example.com", "https", 443),
            ("redis://example.com", "redis", 6379),
            ("postgres://example.com", "postgres", 5432),
            ("mysql://example.com", "mysql", 3306),
            ("mqtt://example.com", "mqtt", 1883),
        ];
        for (entry, scheme, port) in cases {
            let h = hosts(&[entry]);
            assert!(h.allows(scheme, "example.com", None), "{entry}");
            assert!(h.allows(scheme, "example.com", Some(port)), "{entry}");
            assert!(!h.allows(scheme, "example.com", Some(port + 1)), "{entry}");
        }
    }

    #[test]
    fn schemes_without_a_default_port_must_give_one() {
        for entry in ["tcp://example.com", "*://example.com"] {
            let err = AllowedHosts::parse(&[entry.to_string()]).expect_err(entry);
            assert!(err.contains("does not have a known default port"), "{err}");
        }
        assert!(hosts(&["tcp://example.com:9000"]).allows("tcp", "example.com", Some(9000)));
    }

    #[test]
    fn a_subdomain_wildcard_does_not_match_the_bare_domain() {
        let h = hosts(&["https://*.example.com"]);
        assert!(h.allows("https", "api.example.com", None));
        assert!(h.allows("https", "a.b.example.com", None));
        assert!(!h.allows("https", "example.com", None));
        assert!(!h.allows("https", "badexample.com", None));
    }

    #[test]
    fn cidr_entries_match_addresses_inside_the_network() {
        let h = hosts(&["*://10.0.0.0/8:*", "http://[fd00::]/16"]);
        assert!(h.allows("tcp", "10.1.2.3", Some(1)));
        assert!(!h.allows("tcp", "11.0.0.1", Some(1)));
        assert!(!h.allows("tcp", "example.com", Some(1)));
        assert!(h.allows("http", "[fd00::1]", None));
        assert!(!h.allows("http", "[fe00::1]", None));
    }

    #[test]
    fn hosts_and_schemes_compare_case_insensitively() {
        let h = hosts(&["HTTPS://Example.COM"]);
        assert!(h.allows("https", "example.com", None));
        assert!(h.allows("HTTPS", "EXAMPLE.com", Some(443)));
    }

    #[test]
    fn wildcards_cover_every_scheme_host_and_port() {
        let h = hosts(&["*://*:*"]);
        assert!(h.allows("tcp", "anything", Some(1)));
        assert!(h.allows_relative());
        assert!(h.allows_service_chaining("any-component"));
    }

    #[test]
    fn ipv6_literals_are_allowed_with_brackets() {
        let h = hosts(&["http://[::1]:8080"]);
        assert!(h.allows("http", "[::1]", Some(8080)));
        assert!(h.allows("http", "::1", Some(8080)));
        assert!(h.allows_url("http://[::1]:8080/x"));
        assert!(!h.allows_url("http://[::1]:8081/x"));
    }

    #[test]
    fn urls_are_split_into_scheme_host_and_port() {
        let h = hosts(&["redis://127.0.0.1:6379", "http://127.0.0.1:8080"]);
        assert!(h.allows_url("redis://127.0.0.1:6379"));
        assert!(h.allows_url("redis://127.0.0.1"));
        assert!(h.allows_url("redis://user:pw@127.0.0.1:6379/0"));
        assert!(h.allows_url("http://127.0.0.1:8080/x?y=1"));
        assert!(!h.allows_url("http://127.0.0.1/x"));
        assert!(!h.allows_url("127.0.0.1:6379"));
        assert!(!h.allows_url("http://127.0.0.1:notaport/"));
        assert!(!h.allows_url("/relative"));
    }

    #[test]
    fn self_allows_relative_urls_but_not_localhost() {
        let h = hosts(&["http://self"]);
        assert!(h.allows_relative());
        assert!(h.allows_url("/api/x"));
        assert!(h.allows_url("http://self.alt/api"));
        assert!(!h.allows_url("http://127.0.0.1:3000/api"));
        assert!(!h.allows_url("http://localhost:3000/api"));
        assert!(hosts(&["https://self.alt"]).allows_relative());
        assert!(!hosts(&["redis://self"]).allows_relative());
        assert!(!hosts(&["http://example.com"]).allows_relative());
    }

    #[test]
    fn service_chaining_needs_the_component_or_the_spin_internal_wildcard() {
        let one = hosts(&["http://auth.spin.internal"]);
        assert!(one.allows_service_chaining("auth"));
        assert!(!one.allows_service_chaining("billing"));
        assert!(one.mentions_service_chaining());
        let all = hosts(&["http://*.spin.internal"]);
        assert!(all.allows_service_chaining("billing"));
        assert!(all.mentions_service_chaining());
        assert!(!hosts(&["http://example.com"]).mentions_service_chaining());
    }

    #[test]
    fn empty_and_scheme_only_entries_are_skipped() {
        let h = hosts(&["", "http://", "https://", "  "]);
        assert!(h.is_empty());
    }

    #[test]
    fn one_trailing_slash_is_tolerated() {
        assert!(hosts(&["https://example.com/"]).allows("https", "example.com", None));
        assert!(hosts(&["https://example.com:8443/"]).allows("https", "example.com", Some(8443)));
    }

    #[test]
    fn malformed_entries_are_rejected() {
        let cases = [
            ("insecure:allow-all", "*://*:*"),
            ("example.com", "does not contain a scheme"),
            ("*", "does not contain a scheme"),
            ("https://example.com/path", "has a path"),
            ("https://example.com:443/path", "has a path"),
            ("https://example.com//", "has a path"),
            ("ht1p://example.com", "invalid character"),
            ("https://{a,b}.example.com", "braces"),
            ("https://exa*mple.com", "wildcard"),
            ("http://example.com:99999", "invalid port"),
            ("http://example.com:5..3", "empty"),
            ("http://example.com:a..b", "invalid port"),
            ("http://10.0.0.0/33", "too long"),
            ("redis://", "no host"),
        ];
        for (entry, needle) in cases {
            let err = AllowedHosts::parse(&[entry.to_string()]).expect_err(entry);
            assert!(err.contains(needle), "{entry}: {err}");
        }
    }
}
