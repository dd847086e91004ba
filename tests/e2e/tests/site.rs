//! What the browser client is served (issue #9), over HTTP through the host: the home page with
//! the tickets for sale already in its HTML, search by title, "my tickets", the pages, and the
//! static assets' caching, compression and 404s.

use std::io::Read;

use e2e::{
    Host, RedisServer, Reply, app, create_ticket, eventually, id_of, messages, send, sign_up,
};
use serde_json::json;

fn shop() -> (Host, RedisServer) {
    let redis = RedisServer::start();
    let host = app(&redis).start();
    (host, redis)
}

fn get_with(host: &Host, path: &str, headers: &[(&str, &str)]) -> Reply {
    host.request_with("GET", path, headers, None)
}

fn titles(reply: &Reply) -> Vec<String> {
    reply
        .json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|ticket| ticket["title"].as_str().expect("a title").to_owned())
        .collect()
}

/// The titles listed in the home page's HTML, in order.
fn listed_titles(html: &str) -> Vec<String> {
    html.split(r#"<span class="ticket-title">"#)
        .skip(1)
        .map(|rest| rest.split("</span>").next().expect("closed").to_owned())
        .collect()
}

/// The `href` of the home page's "Show more tickets" link, unescaped.
fn more_link(html: &str) -> Option<String> {
    let start = html.find(r#"<a id="more""#)?;
    let href = html[start..].split(r#"href=""#).nth(1)?.split('"').next()?;
    Some(href.replace("&amp;", "&"))
}

#[test]
fn the_home_page_html_already_lists_the_tickets_for_sale_newest_first() {
    let (host, _redis) = shop();
    let empty = host.get("/");
    assert_eq!(empty.status, 200);
    assert_eq!(
        empty.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        empty.body.contains("No tickets for sale yet."),
        "{}",
        empty.body
    );

    let seller = sign_up(&host, "seller@example.com");
    for n in 1..=50 {
        create_ticket(&host, &seller, &format!("Show {n}"), 10.0 + f64::from(n));
    }
    create_ticket(&host, &seller, "<script>alert(1)</script> & Friends", 5.0);

    let first = host.get("/");
    let listed = listed_titles(&first.body);
    assert_eq!(listed.len(), 48, "{}", first.body);
    assert_eq!(
        listed[0], "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Friends",
        "titles are escaped"
    );
    assert!(!first.body.contains("<script>alert(1)"));
    assert_eq!(listed[1], "Show 50");
    assert!(first.body.contains("$60.00"), "prices are shown");

    // Without scripts, "Show more tickets" is a link to the next page.
    let next = more_link(&first.body).expect("a link to more tickets");
    let second = host.get(&next);
    assert_eq!(second.status, 200);
    assert_eq!(listed_titles(&second.body), ["Show 3", "Show 2", "Show 1"]);
    assert_eq!(more_link(&second.body), None);

    // The stylesheet and script are linked by their fingerprint, which is what is served.
    let css_link = first
        .body
        .split("href=\"/app.css?v=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a fingerprinted stylesheet link");
    let css = host.get(&format!("/app.css?v={css_link}"));
    assert_eq!(css.header("etag"), Some(format!("\"{css_link}\"").as_str()));
    assert_eq!(
        css.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(first.body.contains("/app.js?v="), "{}", first.body);

    // The HTML is revalidated, and unchanged it is a bodiless 304.
    assert_eq!(first.header("cache-control"), Some("no-cache"));
    let tag = first.header("etag").expect("an ETag");
    let again = get_with(&host, "/", &[("if-none-match", tag)]);
    assert_eq!(again.status, 304);
    assert!(again.bytes.is_empty());
    create_ticket(&host, &seller, "One more", 1.0);
    let changed = get_with(&host, "/", &[("if-none-match", tag)]);
    assert_eq!(changed.status, 200, "a new ticket changes the page");
    assert_eq!(listed_titles(&changed.body)[0], "One more");

    let head = host.request("HEAD", "/", None);
    assert_eq!(head.status, 200);
    assert!(head.bytes.is_empty());
    let post = host.post("/", "");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(messages(&post), ["Method not allowed"]);
}

#[test]
fn search_finds_tickets_by_the_words_of_their_title() {
    let (host, _redis) = shop();
    let seller = sign_up(&host, "seller@example.com");
    for title in [
        "Jazz Night at the Blue Note",
        "Late jazz",
        "Rock Night",
        "Café Tacvba",
        "JAZZERCISE class",
    ] {
        create_ticket(&host, &seller, title, 20.0);
    }
    let search = |q: &str| {
        let reply = host.get(&format!("/api/tickets?q={q}"));
        assert_eq!(reply.status, 200, "{q}: {}", reply.body);
        titles(&reply)
    };
    assert_eq!(
        search("jazz"),
        ["Late jazz", "Jazz Night at the Blue Note"],
        "case-insensitive whole words, newest first"
    );
    assert_eq!(search("night%20JAZZ"), ["Jazz Night at the Blue Note"]);
    assert_eq!(search("cafe"), ["Café Tacvba"], "accents are ignored");
    assert_eq!(search("opera"), Vec::<String>::new());
    assert_eq!(
        search("%22%20OR%20*"),
        Vec::<String>::new(),
        "no query syntax"
    );
    assert_eq!(search("jazzercise"), ["JAZZERCISE class"]);
    assert_eq!(search("").len(), 5, "an empty search is everything");

    // The same paging as the list.
    let first = host.get("/api/tickets?q=jazz&limit=1");
    assert_eq!(titles(&first), ["Late jazz"]);
    let link = first.header("link").expect("a next link");
    assert!(link.contains("q=jazz"), "{link}");
    let cursor = first.header("x-next-cursor").expect("a cursor");
    let rest = host.get(&format!("/api/tickets?q=jazz&limit=1&cursor={cursor}"));
    assert_eq!(titles(&rest), ["Jazz Night at the Blue Note"]);
    assert_eq!(rest.header("link"), None);

    // Too long a search is a field error and the home page says so in the error format too.
    let long = "a".repeat(201);
    let reply = host.get(&format!("/api/tickets?q={long}"));
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["errors"][0]["field"], json!("q"));
    assert_eq!(host.get(&format!("/?q={long}")).status, 400);

    // The home page searches the same way and keeps the words in the box.
    let page = host.get("/?q=night");
    assert_eq!(
        listed_titles(&page.body),
        ["Rock Night", "Jazz Night at the Blue Note"]
    );
    assert!(page.body.contains(r#"value="night""#), "{}", page.body);
    assert!(page.body.contains("Tickets matching “night”"));

    // A ticket that is no longer for sale is no longer found; an edit is found by its new title.
    let edited = create_ticket(&host, &seller, "Opera gala", 50.0);
    let update = send(
        &host,
        "PUT",
        &format!("/api/tickets/{}", id_of(&edited)),
        &seller,
        &json!({ "title": "Ballet gala", "price": 50 }),
    );
    assert_eq!(update.status, 200, "{}", update.body);
    assert_eq!(search("opera"), Vec::<String>::new());
    assert_eq!(search("ballet"), ["Ballet gala"]);
}

#[test]
fn my_tickets_lists_every_ticket_of_the_seller_whatever_its_status() {
    let (host, _redis) = shop();
    let unsigned = host.get("/api/tickets/mine");
    assert_eq!(unsigned.status, 401, "{}", unsigned.body);

    let seller = sign_up(&host, "seller@example.com");
    let other = sign_up(&host, "other@example.com");
    let sold = create_ticket(&host, &seller, "Sold one", 10.0);
    create_ticket(&host, &seller, "Listed one", 12.0);
    create_ticket(&host, &other, "Someone else's", 12.0);
    let buyer = sign_up(&host, "buyer@example.com");
    let order = eventually("the ticket to reach the orders replica", || {
        let reply = send(
            &host,
            "POST",
            "/api/orders",
            &buyer,
            &json!({ "ticketId": id_of(&sold) }),
        );
        (reply.status != 404).then_some(reply)
    });
    assert_eq!(order.status, 201, "{}", order.body);

    let mine = eventually("the ticket to be reserved", || {
        let reply = send(&host, "GET", "/api/tickets/mine", &seller, &json!(null));
        assert_eq!(reply.status, 200, "{}", reply.body);
        let statuses: Vec<(String, String)> = reply
            .json()
            .as_array()
            .expect("an array")
            .iter()
            .map(|t| {
                (
                    t["title"].as_str().expect("a title").to_owned(),
                    t["status"].as_str().expect("a status").to_owned(),
                )
            })
            .collect();
        (statuses[1].1 == "reserved").then_some(statuses)
    });
    assert_eq!(
        mine,
        [
            ("Listed one".to_owned(), "available".to_owned()),
            ("Sold one".to_owned(), "reserved".to_owned())
        ]
    );
}

#[test]
fn pages_and_assets_are_served_with_caching_compression_and_404s() {
    let (host, _redis) = shop();
    for path in [
        "/auth/signup",
        "/auth/signin",
        "/auth/signout",
        "/tickets/new",
        "/tickets/mine",
        "/tickets/3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f",
        "/tickets/3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f/edit",
        "/orders",
        "/orders/3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f",
    ] {
        let page = host.get(path);
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert_eq!(page.header("cache-control"), Some("no-cache"), "{path}");
        assert!(page.body.contains("/app.js?v="), "{path}: {}", page.body);
    }

    let css = host.get("/app.css");
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(css.header("cache-control"), Some("no-cache"));
    assert_eq!(css.header("content-encoding"), None, "not asked for gzip");
    let tag = css.header("etag").expect("an ETag").to_owned();
    let fresh = get_with(&host, "/app.css", &[("if-none-match", &tag)]);
    assert_eq!(fresh.status, 304);
    assert!(fresh.bytes.is_empty());
    let stale = get_with(&host, "/app.css", &[("if-none-match", "\"0000\"")]);
    assert_eq!(stale.status, 200);

    // gzip for a client that accepts it: smaller, the same text, a tag of its own.
    let gzipped = get_with(&host, "/app.js", &[("accept-encoding", "gzip, br")]);
    let plain = host.get("/app.js");
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_eq!(gzipped.header("vary"), Some("accept-encoding"));
    assert_ne!(gzipped.header("etag"), plain.header("etag"));
    assert!(gzipped.bytes.len() * 2 < plain.bytes.len());
    let mut text = String::new();
    flate2::read::GzDecoder::new(gzipped.bytes.as_slice())
        .read_to_string(&mut text)
        .expect("gzip");
    assert_eq!(text, plain.body);
    assert_eq!(
        host.get("/app.js").header("content-type"),
        Some("text/javascript; charset=utf-8")
    );

    // A stale fingerprint is not cached for long: the next deploy's file would be hidden.
    let old = host.get("/app.css?v=0123456789abcdef");
    assert_eq!(old.header("cache-control"), Some("no-cache"));

    for missing in ["/missing.css", "/tickets/nope.html", "/api/nothing-here"] {
        let reply = host.get(missing);
        assert_eq!(reply.status, 404, "{missing}");
        assert_eq!(messages(&reply), ["Not found"], "{missing}");
    }
    let post = host.post("/app.css", "");
    assert_eq!(post.status, 405);
}
