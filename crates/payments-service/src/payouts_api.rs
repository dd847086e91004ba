//! The sellers' routes: connecting a payout account (Stripe Express onboarding), its status, the
//! seller's sales with their payouts, and a link into the seller's Stripe dashboard.

use api::{ApiError, Request, Response};

use crate::PaymentsApi;
use crate::api::stripe_failure;
use crate::payouts::{self, PayoutAccount};
use crate::stripe::Account;

pub(crate) const NOT_ONBOARDED: &str =
    "Your payout account is not set up yet: connect it from My Tickets first";

/// Where Stripe sends the seller back: My Tickets, told how onboarding went.
const RETURN_PATH: &str = "/tickets/mine?payouts=done";
/// Where Stripe sends a seller whose onboarding link expired: My Tickets asks for a new one.
const REFRESH_PATH: &str = "/tickets/mine?payouts=refresh";

impl PaymentsApi<'_> {
    /// `POST /api/payouts/account`: the seller's Express account, made once per user (an
    /// idempotency key and one row per user), and a fresh onboarding link for it:
    /// `201 {url, status, payoutsEnabled, requirementsDue}`.
    pub(crate) fn connect_account(&self, request: &Request) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let now = self.clock.now_ms();
        let account = match payouts::account(self.db, &user.id)? {
            Some(account) => account,
            None => {
                let made = self
                    .gateway
                    .create_account(&user.id, &user.email)
                    .map_err(stripe_failure)?;
                payouts::insert_account(self.db, &user.id, &made, now)?;
                payouts::account(self.db, &user.id)?
                    .ok_or_else(|| anyhow::anyhow!("the payout account of {} vanished", user.id))?
            }
        };
        let origin = site_origin(request)?;
        let link = self
            .gateway
            .create_account_link(
                &account.stripe_id,
                &format!("{origin}{RETURN_PATH}"),
                &format!("{origin}{REFRESH_PATH}"),
                now,
            )
            .map_err(stripe_failure)?;
        let mut body = PayoutAccount::status_json(Some(&account));
        body["url"] = link.url.into();
        Ok(Response::json(201, &body))
    }

    /// `GET /api/payouts/account`: `{status: none | pending | enabled, payoutsEnabled,
    /// requirementsDue}`, as the last `account.updated` webhook left it.
    pub(crate) fn account_status(&self, request: &Request) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let account = payouts::account(self.db, &user.id)?;
        Ok(Response::json(
            200,
            &PayoutAccount::status_json(account.as_ref()),
        ))
    }

    /// `GET /api/payouts`: the seller's sales, newest first, each with its price, the platform's
    /// fee, the net paid out and where the payout stands.
    pub(crate) fn sales(&self, request: &Request) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let sales: Vec<serde_json::Value> = payouts::sales(self.db, &user.id)?
            .iter()
            .map(payouts::Payout::to_json)
            .collect();
        Ok(Response::json(200, &sales))
    }

    /// `POST /api/payouts/dashboard`: `201 {url}`, a single-use link into the seller's Express
    /// dashboard; 400 until the account is enabled.
    pub(crate) fn dashboard(&self, request: &Request) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let account = payouts::account(self.db, &user.id)?
            .filter(|account| account.enabled)
            .ok_or_else(|| ApiError::BadRequest(NOT_ONBOARDED.to_owned()))?;
        let link = self
            .gateway
            .create_login_link(&account.stripe_id, self.clock.now_ms())
            .map_err(stripe_failure)?;
        Ok(Response::json(201, &serde_json::json!({ "url": link.url })))
    }

    /// An `account.updated` webhook: records what Stripe says of the seller's account and, once it
    /// is enabled, pays out what waited for it.
    pub(crate) fn account_updated(
        &self,
        account: &Account,
        stripe_time_s: u64,
    ) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let Some(seller) = payouts::account_updated(self.db, account, stripe_time_s, now)? else {
            return Ok(());
        };
        if account.is_enabled() {
            payouts::pay_out(self.db, self.gateway, Some(&seller), now)?;
        }
        Ok(())
    }
}

/// The site's origin (`https://tickets.example`), from the URL Spin says the request was made to
/// (`spin-full-url`), else its `Host`.
fn site_origin(request: &Request) -> Result<String, ApiError> {
    if let Some(url) = request.header("spin-full-url")
        && let Some((scheme, rest)) = url.split_once("://")
    {
        let authority = rest.split('/').next().unwrap_or(rest);
        return Ok(format!("{scheme}://{authority}"));
    }
    request
        .header("host")
        .map(|host| format!("http://{host}"))
        .ok_or_else(|| ApiError::BadRequest("The request names no host".to_owned()))
}
