//! The home page, `/`: the tickets for sale (or those a search found) rendered into the page's
//! HTML, so the list shows at first paint, before any script runs or second request is made.
//! The page's script loads further pages in place with the same markup (`static/app.js`,
//! `ticketItem`); without scripts, "Show more tickets" is a plain link to the next page.

use crate::ticket::Ticket;

/// Tickets on the home page's first page.
pub const HOME_PAGE_SIZE: u32 = 48;

/// Fills `template` (`templates/pages/home.html` in the layout): `{{heading}}`, `{{query}}` (the search box's value),
/// `{{tickets}}` (the list items) and `{{more}}` (the link to the next page, if any).
pub(crate) fn render(
    template: &str,
    tickets: &[Ticket],
    query: &str,
    next_cursor: Option<i64>,
) -> String {
    let heading = if query.trim().is_empty() {
        "Tickets for sale".to_owned()
    } else {
        format!("Tickets matching “{}”", site::escape_html(query.trim()))
    };
    let items = if tickets.is_empty() {
        let message = if query.trim().is_empty() {
            "No tickets for sale yet."
        } else {
            "No tickets match your search."
        };
        format!(r#"<li class="empty">{message}</li>"#)
    } else {
        tickets.iter().map(item).collect::<Vec<_>>().join("\n")
    };
    let query_value = site::escape_html(query);
    let more = match next_cursor {
        Some(cursor) => {
            let mut href = format!("/?cursor={cursor}");
            if !query.is_empty() {
                href.push_str(&format!("&q={}", api::query::encode(query)));
            }
            format!(
                r#"<a id="more" class="button more" href="{}" data-cursor="{cursor}">Show more tickets</a>"#,
                site::escape_html(&href)
            )
        }
        None => String::new(),
    };
    site::fill(template, |name| match name {
        "heading" => Some(&heading),
        "query" => Some(&query_value),
        "tickets" => Some(&items),
        "more" => Some(&more),
        _ => None,
    })
}

/// One ticket in the list; `static/app.js` renders the same markup.
fn item(ticket: &Ticket) -> String {
    let cents = ticket.price.cents();
    format!(
        r#"<li class="ticket"><a href="/tickets/{id}"><span class="ticket-title">{title}</span> <span class="ticket-price">${dollars}.{cents:02}</span></a></li>"#,
        id = ticket.id,
        title = site::escape_html(ticket.title.as_str()),
        dollars = cents / 100,
        cents = cents % 100,
    )
}

#[cfg(test)]
mod tests {
    use domain::{Price, TicketId, Title, Version};

    use super::*;
    use crate::ticket::TicketStatus;

    const TEMPLATE: &str =
        "<h1>{{heading}}</h1><input value=\"{{query}}\"><ul>{{tickets}}</ul>{{more}}";

    fn ticket(title: &str, cents: u64) -> Ticket {
        Ticket {
            seq: 7,
            id: TicketId::parse("3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f").expect("valid"),
            title: Title::parse(title).expect("valid"),
            price: Price::from_cents(cents).expect("valid"),
            face_value: Price::from_cents(cents).expect("valid"),
            listing: 1,
            user_id: "u1".to_owned(),
            version: Version::new(0),
            order_id: None,
            status: TicketStatus::Available,
        }
    }

    #[test]
    fn tickets_are_rendered_escaped_with_their_price_and_link() {
        let html = render(TEMPLATE, &[ticket("<Rock> & \"Roll\"", 1905)], "", Some(7));
        assert_eq!(
            html,
            "<h1>Tickets for sale</h1><input value=\"\"><ul><li class=\"ticket\"><a href=\"/tickets/3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f\"><span class=\"ticket-title\">&lt;Rock&gt; &amp; &quot;Roll&quot;</span> <span class=\"ticket-price\">$19.05</span></a></li></ul><a id=\"more\" class=\"button more\" href=\"/?cursor=7\" data-cursor=\"7\">Show more tickets</a>"
        );
    }

    #[test]
    fn a_title_that_looks_like_a_placeholder_is_shown_as_it_is() {
        let html = render(TEMPLATE, &[ticket("{{more}} {{query}}", 100)], "x", Some(1));
        assert!(
            html.contains(r#"<span class="ticket-title">{{more}} {{query}}</span>"#),
            "{html}"
        );
        assert_eq!(html.matches("Show more tickets").count(), 1);
    }

    #[test]
    fn a_search_keeps_its_words_and_says_when_nothing_matched() {
        let html = render(TEMPLATE, &[], "jazz \"night\"", None);
        assert!(
            html.contains("Tickets matching “jazz &quot;night&quot;”"),
            "{html}"
        );
        assert!(html.contains("value=\"jazz &quot;night&quot;\""), "{html}");
        assert!(html.contains("No tickets match your search."), "{html}");
        let next = render(TEMPLATE, &[ticket("Jazz", 100)], "jazz & blues", Some(3));
        assert!(
            next.contains("href=\"/?cursor=3&amp;q=jazz%20%26%20blues\""),
            "{next}"
        );
    }
}
