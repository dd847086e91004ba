//! The tickets HTTP component: Spin glue over `tickets_service::TicketsApi`. A write commits the
//! ticket and its event in one SQLite transaction (the outbox); the event is then relayed to
//! Redis. If Redis is away the request still succeeds and the event waits in the outbox.
//!
//! It also serves the home page, `/`: the tickets it owns, rendered into
//! `templates/pages/home.html` in `templates/layout.html`. That template, its stylesheet and
//! script links already fingerprinted as the `static-files` component serves them, is embedded
//! when the component is built (`site_assets::HOME_TEMPLATE`), so a request reads no file and
//! hashes no asset; only the rendered page is tagged (and gzipped, if that is the answer).

use anyhow::{Context, Result};
use spin_adapter::SpinDatabase;
use tickets_service::{TicketsApi, TicketsConfig};

spin_adapter::http_component!("tickets", serve);

const DATABASE: &str = "tickets";
/// The probes' route (spin.toml), which keeps the housekeeping tick armed.
const HEARTBEAT: &str = "/api/heartbeat";

fn serve(request: &api::Request) -> Result<spin_adapter::Served> {
    if request.path == HEARTBEAT {
        return Ok(match request.method {
            api::Method::Get | api::Method::Head => spin_adapter::heartbeat(),
            _ => api::ApiError::NotFound.into_response(),
        }
        .into());
    }
    let config = TicketsConfig::from_variables(&spin_adapter::SpinVariables)
        .context("reading the tickets configuration")?;
    let db = SpinDatabase::open(DATABASE, tickets_service::MIGRATIONS)
        .context("opening the tickets database")?;
    let tickets = TicketsApi {
        db: &db,
        config: &config,
        clock: &spin_adapter::WallClock,
    };
    if request.path == "/" {
        return home(&tickets, request).map(Into::into);
    }

    let response = tickets.handle(request);
    Ok(spin_adapter::relay_enqueued(response, db))
}

/// `GET /` (and `HEAD`): the home page with the first page of tickets in it.
fn home(tickets: &TicketsApi<'_>, request: &api::Request) -> Result<api::Response> {
    let include_body = match request.method {
        api::Method::Get => true,
        api::Method::Head => false,
        _ => return Ok(api::ApiError::MethodNotAllowed { allow: "GET, HEAD" }.into_response()),
    };
    let html = match tickets.home_page(request, site_assets::HOME_TEMPLATE) {
        Ok(html) => html,
        Err(error) => return Ok(error.into_response()),
    };
    let page = site::Contents::new(html.into_bytes(), "text/html; charset=utf-8");
    let served = site::serve(
        &page.resource(),
        site::Conditions {
            query: &request.query,
            accept_encoding: request.header("accept-encoding").unwrap_or_default(),
            if_none_match: request.header("if-none-match"),
            include_body,
        },
    );
    let mut response = api::Response::empty(served.status);
    for (name, value) in &served.headers {
        response = response.with_header(name, value);
    }
    response.body = served.body;
    Ok(response)
}
