//! The routes of the passes service.

use api::{ApiError, Method, Request, Response, Validator, parse_json};
use domain::{Clock, TicketId};
use serde::Deserialize;
use serde_json::{Value, json};
use session::Claims;
use storage::Database;

use crate::checkin::{NotTheIssuer, check_in};
use crate::{PassesConfig, store};

/// `{"secret": "…", "nonce": "…"}`, each of at most 200 characters even written as JSON escapes;
/// anything bigger is not a scan.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Revocations listed per `GET /api/passes/revoked`.
const REVOCATIONS_PAGE: u32 = 1000;

pub(crate) const NOT_HOLDER: &str = "This ticket's pass is its holder's";
pub(crate) const NOT_ISSUER: &str = "Only the ticket's issuer may check it in";
pub(crate) const RESOLD: &str = "This ticket was resold: this pass is no longer valid";

/// One request's view of the service: the configuration and the ports it may use.
pub struct PassesApi<'a> {
    pub db: &'a dyn Database,
    pub config: &'a PassesConfig,
    pub clock: &'a dyn Clock,
}

/// The paths this service answers.
enum Route<'a> {
    /// `/api/passes/key`
    Key,
    /// `/api/passes/revoked`
    Revoked,
    /// `/api/checkins`
    CheckIns,
    /// `/api/tickets/:id/pass`, with the id as written.
    Pass(&'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    let path = path.strip_suffix('/').unwrap_or(path);
    match path {
        "/api/passes/key" => Some(Route::Key),
        "/api/passes/revoked" => Some(Route::Revoked),
        "/api/checkins" => Some(Route::CheckIns),
        _ => {
            let id = path.strip_prefix("/api/tickets/")?.strip_suffix("/pass")?;
            (!id.is_empty() && !id.contains('/')).then_some(Route::Pass(id))
        }
    }
}

impl PassesApi<'_> {
    /// Answers one request. Never fails: errors become responses in the error format.
    pub fn handle(&self, request: &Request) -> Response {
        let result = match (&request.method, route(&request.path)) {
            (Method::Get, Some(Route::Key)) => Ok(self.public_key()),
            (Method::Get, Some(Route::Revoked)) => self.revoked(request),
            (Method::Post, Some(Route::CheckIns)) => self.check_in(request),
            (Method::Get, Some(Route::Pass(id))) => self.pass(request, id),
            _ => Err(ApiError::NotFound),
        };
        result.unwrap_or_else(ApiError::into_response)
    }

    /// `GET /api/passes/key`: the public key that checks every pass, for scanners to keep.
    fn public_key(&self) -> Response {
        let key = self.config.signer.verifier().to_base64url();
        Response::json(200, &json!({ "algorithm": "Ed25519", "key": key }))
    }

    /// `GET /api/passes/revoked?since=N`: the generations revoked after cursor `N` (0 for all),
    /// oldest first, and the cursor to ask from next.
    fn revoked(&self, request: &Request) -> Result<Response, ApiError> {
        let since = match api::query::param(&request.query, "since") {
            None => 0,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::validation("since", "since must be a whole number, 0 or more")
                })?,
        };
        let revoked = store::revocations(self.db, since, REVOCATIONS_PAGE)?;
        let next = revoked.last().map_or(since, |(seq, _, _)| *seq);
        let entries: Vec<Value> = revoked
            .into_iter()
            .map(|(_, ticket_id, generation)| json!({ "ticketId": ticket_id, "generation": generation }))
            .collect();
        Ok(Response::json(
            200,
            &json!({ "revoked": entries, "next": next }),
        ))
    }

    /// `GET /api/tickets/:id/pass`: the holder's pass (401 for anyone else, 404 before the
    /// ticket is sold), its secret and its QR code.
    fn pass(&self, request: &Request, id: &str) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let id = TicketId::parse(id).map_err(|_| ApiError::NotFound)?;
        let current = store::current_pass(self.db, &id.to_string())?.ok_or(ApiError::NotFound)?;
        if current.holder_id != user.id {
            if store::held_before(self.db, &current.ticket_id, &user.id)? {
                return Err(ApiError::Gone(RESOLD.to_owned()));
            }
            return Err(ApiError::NotAuthorized(NOT_HOLDER.to_owned()));
        }
        let secret = self.config.signer.sign(&current.pass()?);
        let svg = pass_secret::qr_svg(&secret)
            .map_err(|error| anyhow::anyhow!("drawing the QR of a pass: {error:?}"))?;
        Ok(Response::json(
            200,
            &json!({
                "ticketId": current.ticket_id,
                "title": current.title,
                "holderEmail": user.email,
                "generation": current.generation,
                "secret": secret,
                "svg": svg,
            }),
        ))
    }

    /// `POST /api/checkins {secret, nonce}`: one scan by the ticket's issuer.
    fn check_in(&self, request: &Request) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let (secret, nonce) = scan_form(request)?;
        let now = self.clock.now_ms();
        let verifier = self.config.signer.verifier();
        let scan = check_in(self.db, &verifier, &user.id, &secret, &nonce, now)?
            .map_err(|NotTheIssuer| ApiError::NotAuthorized(NOT_ISSUER.to_owned()))?;
        let (ticket_id, title) = scan.ticket.unzip();
        Ok(Response::json(
            200,
            &json!({
                "result": scan.result.as_str(),
                "ticketId": ticket_id,
                "title": title,
                "at": domain::rfc3339_millis(scan.at_ms),
            }),
        ))
    }

    fn signed_in_user(&self, request: &Request) -> Result<Claims, ApiError> {
        api::require_user(request, &self.config.verifier, self.clock.now_ms() / 1000)
    }
}

#[derive(Deserialize)]
struct ScanForm {
    secret: Option<Value>,
    nonce: Option<Value>,
}

/// The secret and nonce of a scan, each a non-empty string of at most 200 characters.
fn scan_form(request: &Request) -> Result<(String, String), ApiError> {
    let form: ScanForm = parse_json(request, MAX_BODY_BYTES)?;
    let mut v = Validator::new();
    let mut text = |field: &str, value: &Option<Value>| match value {
        Some(Value::String(text)) if !text.trim().is_empty() && text.len() <= 200 => {
            Some(text.trim().to_owned())
        }
        _ => {
            v.add(
                field,
                &format!("{field} must be a string of 1 to 200 characters"),
            );
            None
        }
    };
    let secret = text("secret", &form.secret);
    let nonce = text("nonce", &form.nonce);
    v.finish_with(|| secret.zip(nonce))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{BUYER, NEXT_BUYER, SELLER, TICKET, TestApp};

    fn pass_path() -> String {
        format!("/api/tickets/{TICKET}/pass")
    }

    #[test]
    fn the_public_key_that_checks_every_pass_is_served() {
        let app = TestApp::new();
        let response = app.request(Method::Get, "/api/passes/key", None, None);
        assert_eq!(response.status, 200);
        let key = api::testing::json(&response)["key"]
            .as_str()
            .map(str::to_owned);
        assert_eq!(key, Some(app.signer().verifier().to_base64url()));
    }

    #[test]
    fn a_pass_is_its_holder_s_alone_and_exists_once_the_ticket_is_sold() {
        let app = TestApp::new();
        app.list();
        let before = app.request(Method::Get, &pass_path(), Some(BUYER), None);
        assert_eq!(before.status, 404);
        app.sell("o1", BUYER);
        for stranger in [None, Some(SELLER), Some(NEXT_BUYER)] {
            let refused = app.request(Method::Get, &pass_path(), stranger, None);
            assert_eq!(refused.status, 401, "{stranger:?}");
        }
        let response = app.request(Method::Get, &pass_path(), Some(BUYER), None);
        assert_eq!(response.status, 200, "{}", api::testing::text(&response));
        let body = api::testing::json(&response);
        assert_eq!(body["ticketId"], TICKET);
        assert_eq!(body["title"], "Concert");
        assert_eq!(body["holderEmail"], format!("{BUYER}@example.com"));
        assert_eq!(body["generation"], 1);
        let secret = body["secret"].as_str().expect("a secret");
        let pass = app
            .signer()
            .verifier()
            .verify(secret)
            .expect("a signed pass");
        assert_eq!(pass.ticket_id.to_string(), TICKET);
        assert!(body["svg"].as_str().is_some_and(|svg| svg.contains("<svg")));
        let malformed = app.request(
            Method::Get,
            "/api/tickets/not-an-id/pass",
            Some(BUYER),
            None,
        );
        assert_eq!(malformed.status, 404);
    }

    #[test]
    fn a_former_holder_is_told_the_ticket_was_resold() {
        let app = TestApp::new();
        app.list();
        app.sell("o1", BUYER);
        app.sell("o2", NEXT_BUYER);
        let former = app.request(Method::Get, &pass_path(), Some(BUYER), None);
        assert_eq!(former.status, 410, "{}", api::testing::text(&former));
        assert_eq!(api::testing::json(&former)["errors"][0]["message"], RESOLD);
        let current = app.request(Method::Get, &pass_path(), Some(NEXT_BUYER), None);
        assert_eq!(api::testing::json(&current)["generation"], 2);
        let stranger = app.request(Method::Get, &pass_path(), Some(SELLER), None);
        assert_eq!(stranger.status, 401);
    }

    #[test]
    fn the_issuer_checks_a_pass_in_once() {
        let app = TestApp::new();
        app.list();
        app.sell("o1", BUYER);
        let scan = |user: &str, nonce: &str| {
            let body = json!({ "secret": app.secret(), "nonce": nonce });
            app.request(Method::Post, "/api/checkins", Some(user), Some(&body))
        };
        let first = scan(SELLER, "n1");
        assert_eq!(first.status, 200, "{}", api::testing::text(&first));
        let first = api::testing::json(&first);
        assert_eq!(first["result"], "ok");
        assert_eq!(
            (first["ticketId"].clone(), first["title"].clone()),
            (json!(TICKET), json!("Concert"))
        );
        assert_eq!(
            api::testing::json(&scan(SELLER, "n2"))["result"],
            "already_redeemed"
        );
        assert_eq!(scan(BUYER, "n3").status, 401);
        let unsigned = app.request(Method::Post, "/api/checkins", None, Some(&json!({})));
        assert_eq!(unsigned.status, 401);
    }

    #[test]
    fn a_scan_without_its_secret_or_nonce_is_refused_field_by_field() {
        let app = TestApp::new();
        let response = app.request(
            Method::Post,
            "/api/checkins",
            Some(SELLER),
            Some(&json!({ "secret": "", "nonce": 7 })),
        );
        assert_eq!(response.status, 400);
        let fields: Vec<Value> = api::testing::json(&response)["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|error| error["field"].clone())
            .collect();
        assert_eq!(fields, [json!("secret"), json!("nonce")]);
    }

    #[test]
    fn scanners_follow_revocations_from_a_cursor() {
        let app = TestApp::new();
        app.list();
        app.sell("o1", BUYER);
        app.sell("o2", NEXT_BUYER);
        let all = api::testing::json(&app.request(Method::Get, "/api/passes/revoked", None, None));
        assert_eq!(
            all["revoked"],
            json!([{ "ticketId": TICKET, "generation": 1 }])
        );
        let next = all["next"].as_i64().expect("a cursor");
        let path = format!("/api/passes/revoked?since={next}");
        let after = api::testing::json(&app.request(Method::Get, &path, None, None));
        assert_eq!(
            (after["revoked"].clone(), after["next"].clone()),
            (json!([]), json!(next))
        );
        let bad = app.request(Method::Get, "/api/passes/revoked?since=-1", None, None);
        assert_eq!(bad.status, 400);
    }
}
