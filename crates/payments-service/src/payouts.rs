//! Paying sellers through Stripe Connect: each seller's Express connected account, and one payout
//! per sale (`migrations/payments/0005_payouts.sql`).
//!
//! A payout is planned when its order's PaymentIntent is made, and fixed then, so a retried
//! intent creation sends Stripe the same parameters under the same idempotency key:
//! - the seller's account is enabled: a **destination charge** (`transfer_data[destination]`,
//!   `application_fee_amount`), which Stripe pays out itself when the charge succeeds;
//! - it is not (or the seller has none yet): a **platform charge**, paid out later by a Transfer
//!   funded by the charge (`source_transaction`), once the order is complete and the account
//!   enabled ([`pay_out`], run by the event component's housekeeping tick and by the
//!   `account.updated` webhook).
//!
//! The state only moves forward, by guarded updates: `planned` → `waiting_for_account` (a
//! platform charge succeeded) → `transferred` (a destination charge succeeded, or our Transfer
//! was made) → `reversed` (a destination charge was refunded, its transfer and fee reversed); or
//! `cancelled` (a platform charge refunded before any transfer). A Transfer is only made for a
//! complete order, which can no longer be cancelled, so a transfer of ours is never refunded.
//! Its idempotency key is derived from the order: however often housekeeping and the webhook race
//! over one sale, Stripe makes one Transfer and the payout records it once.

use anyhow::Context;
use storage::{Database, Row, SqlValue};

use crate::payment::Order;
use crate::store::unsigned;
use crate::stripe::{Account, Destination, PaymentGateway, StripeError};

/// The most payouts one [`pay_out`] pass transfers.
const PAY_OUT_BATCH: u32 = 100;

/// The platform's fee on a sale of `amount_cents`, at `fee_bps` basis points (1/100 of a
/// percent), rounded down to the cent.
pub fn fee_cents(amount_cents: u64, fee_bps: u16) -> u64 {
    let fee = u128::from(amount_cents) * u128::from(fee_bps) / 10_000;
    // At most `amount_cents`, since `fee_bps` is at most 10,000 in any configuration we accept.
    u64::try_from(fee).unwrap_or(amount_cents).min(amount_cents)
}

/// Where a payout stands; see the module's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutState {
    Planned,
    WaitingForAccount,
    Transferred,
    Reversed,
    Cancelled,
}

impl PayoutState {
    const ALL: [PayoutState; 5] = [
        PayoutState::Planned,
        PayoutState::WaitingForAccount,
        PayoutState::Transferred,
        PayoutState::Reversed,
        PayoutState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PayoutState::Planned => "planned",
            PayoutState::WaitingForAccount => "waiting_for_account",
            PayoutState::Transferred => "transferred",
            PayoutState::Reversed => "reversed",
            PayoutState::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<PayoutState> {
        PayoutState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// How the buyer's money reaches the seller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeType {
    /// Stripe moves it to the seller's account as the charge succeeds.
    Destination,
    /// It lands on the platform, and a Transfer of ours moves it on.
    Platform,
}

impl ChargeType {
    fn as_str(self) -> &'static str {
        match self {
            ChargeType::Destination => "destination",
            ChargeType::Platform => "platform",
        }
    }
}

/// One sale's payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    pub order_id: String,
    pub seller_id: String,
    pub charge_type: ChargeType,
    /// The seller's connected account the money went (or goes) to: a destination charge's from
    /// the start, a platform charge's once transferred.
    pub account_id: Option<String>,
    pub amount_cents: u64,
    pub fee_cents: u64,
    pub currency: String,
    pub state: PayoutState,
    pub created_at_ms: u64,
    /// The ticket sold, as the replica of its order knows it.
    pub ticket_id: Option<String>,
}

impl Payout {
    /// What the seller receives.
    pub fn net_cents(&self) -> u64 {
        self.amount_cents - self.fee_cents
    }

    /// Where a destination charge sends the money; `None` for a platform charge.
    pub fn destination(&self) -> Option<Destination<'_>> {
        match (self.charge_type, &self.account_id) {
            (ChargeType::Destination, Some(account)) => Some(Destination {
                account,
                fee_cents: i64::try_from(self.fee_cents).ok()?,
            }),
            _ => None,
        }
    }

    /// The seller's view of the sale (`GET /api/payouts`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "orderId": self.order_id,
            "ticketId": self.ticket_id,
            "priceCents": self.amount_cents,
            "feeCents": self.fee_cents,
            "netCents": self.net_cents(),
            "currency": self.currency,
            "state": self.state.as_str(),
            "soldAt": domain::rfc3339_millis(self.created_at_ms),
        })
    }
}

/// A seller's connected account, as this service last heard of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutAccount {
    pub stripe_id: String,
    pub enabled: bool,
    pub payouts_enabled: bool,
    pub requirements_due: Vec<String>,
}

impl PayoutAccount {
    /// `GET /api/payouts/account`'s answer for a seller with `account` (or none).
    pub fn status_json(account: Option<&PayoutAccount>) -> serde_json::Value {
        let (status, payouts_enabled, due) = match account {
            None => ("none", false, Vec::new()),
            Some(account) => (
                if account.enabled {
                    "enabled"
                } else {
                    "pending"
                },
                account.payouts_enabled,
                account.requirements_due.clone(),
            ),
        };
        serde_json::json!({
            "status": status,
            "payoutsEnabled": payouts_enabled,
            "requirementsDue": due,
        })
    }
}

/// The connected account of `user_id`, once made.
pub(crate) fn account(db: &dyn Database, user_id: &str) -> anyhow::Result<Option<PayoutAccount>> {
    let rows = db
        .execute(
            "SELECT stripe_id, enabled, payouts_enabled, requirements_due \
             FROM payout_accounts WHERE user_id = ?",
            &[user_id.into()],
        )
        .context("looking up a payout account")?;
    rows.first().map(|row| account_from_row(&row)).transpose()
}

/// Records a seller's account unless one is recorded (two first requests at once got the same
/// account from Stripe, under one idempotency key).
pub(crate) fn insert_account(
    db: &dyn Database,
    user_id: &str,
    account: &Account,
    now_ms: u64,
) -> anyhow::Result<()> {
    let now = SqlValue::from_u64(now_ms)?;
    db.execute(
        "INSERT INTO payout_accounts (user_id, stripe_id, enabled, payouts_enabled, \
         requirements_due, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT DO NOTHING",
        &[
            user_id.into(),
            account.id.as_str().into(),
            i64::from(account.is_enabled()).into(),
            i64::from(account.payouts_enabled).into(),
            serde_json::to_string(&account.requirements_due())?.into(),
            now.clone(),
            now,
        ],
    )
    .context("recording a payout account")?;
    Ok(())
}

/// Applies what Stripe says of `account` at `stripe_time_s` (an `account.updated` event's time),
/// unless a later event was applied already. The seller it belongs to, when it is one of ours
/// and this changed it.
pub(crate) fn account_updated(
    db: &dyn Database,
    account: &Account,
    stripe_time_s: u64,
    now_ms: u64,
) -> anyhow::Result<Option<String>> {
    let rows = db
        .execute(
            "UPDATE payout_accounts SET enabled = ?, payouts_enabled = ?, requirements_due = ?, \
             stripe_updated_s = ?, updated_at_ms = ? WHERE stripe_id = ? AND stripe_updated_s <= ? \
             RETURNING user_id",
            &[
                i64::from(account.is_enabled()).into(),
                i64::from(account.payouts_enabled).into(),
                serde_json::to_string(&account.requirements_due())?.into(),
                SqlValue::from_u64(stripe_time_s)?,
                SqlValue::from_u64(now_ms)?,
                account.id.as_str().into(),
                SqlValue::from_u64(stripe_time_s)?,
            ],
        )
        .with_context(|| format!("updating payout account {}", account.id))?;
    rows.first()
        .map(|row| Ok(row.text("user_id")?.to_owned()))
        .transpose()
}

/// The payout of `order`, planned now if it has none: a destination charge when its seller's
/// account is enabled, else a platform charge. `None` for an order with no seller known (placed
/// before payouts existed), whose money stays with the platform.
pub(crate) fn plan(
    db: &dyn Database,
    order: &Order,
    fee_bps: u16,
    currency: &str,
    now_ms: u64,
) -> anyhow::Result<Option<Payout>> {
    let order_id = order.id.to_string();
    let Some(seller_id) = &order.seller_id else {
        return Ok(None);
    };
    if let Some(planned) = payout(db, &order_id)? {
        return Ok(Some(planned));
    }
    let enabled = account(db, seller_id)?.filter(|account| account.enabled);
    let (charge_type, account_id) = match &enabled {
        Some(account) => (ChargeType::Destination, Some(account.stripe_id.as_str())),
        None => (ChargeType::Platform, None),
    };
    let now = SqlValue::from_u64(now_ms)?;
    db.execute(
        "INSERT INTO payouts (order_id, seller_id, charge_type, account_id, amount_cents, \
         fee_cents, currency, state, created_at_ms, updated_at_ms) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 'planned', ?, ?) ON CONFLICT DO NOTHING",
        &[
            order_id.as_str().into(),
            seller_id.as_str().into(),
            charge_type.as_str().into(),
            account_id.into(),
            SqlValue::from_u64(order.price_cents)?,
            SqlValue::from_u64(fee_cents(order.price_cents, fee_bps))?,
            currency.into(),
            now.clone(),
            now,
        ],
    )
    .with_context(|| format!("planning the payout of order {order_id}"))?;
    payout(db, &order_id)
}

const PAYOUT_COLUMNS: &str = "p.order_id, p.seller_id, p.charge_type, p.account_id, \
     p.amount_cents, p.fee_cents, p.currency, p.state, p.created_at_ms, o.ticket_id";

/// The payout of an order, if one was planned.
pub(crate) fn payout(db: &dyn Database, order_id: &str) -> anyhow::Result<Option<Payout>> {
    let rows = db
        .execute(
            &format!(
                "SELECT {PAYOUT_COLUMNS} FROM payouts p LEFT JOIN orders o ON o.id = p.order_id \
                 WHERE p.order_id = ?"
            ),
            &[order_id.into()],
        )
        .context("looking up a payout")?;
    rows.first().map(|row| payout_from_row(&row)).transpose()
}

/// The payment of `order_id` succeeded in time: a destination charge's payout is made (Stripe
/// moved the money with the charge), a platform charge's waits for a Transfer. In the caller's
/// transaction.
pub(crate) fn paid(tx: &dyn Database, order_id: &str, now_ms: u64) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE payouts SET state = CASE charge_type WHEN 'destination' THEN 'transferred' \
         ELSE 'waiting_for_account' END, updated_at_ms = ? WHERE order_id = ? AND state = 'planned'",
        &[SqlValue::from_u64(now_ms)?, order_id.into()],
    )
    .with_context(|| format!("recording the payout of order {order_id} as paid"))?;
    Ok(())
}

/// The payment of `order_id` is to be refunded: a destination charge's transfer is there, to be
/// reversed with the refund ([`refund_settled`]); a platform charge's payout will never be made.
/// In the caller's transaction.
pub(crate) fn refund_decided(tx: &dyn Database, order_id: &str, now_ms: u64) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE payouts SET state = CASE charge_type WHEN 'destination' THEN 'transferred' \
         ELSE 'cancelled' END, updated_at_ms = ? WHERE order_id = ? \
         AND state IN ('planned', 'waiting_for_account')",
        &[SqlValue::from_u64(now_ms)?, order_id.into()],
    )
    .with_context(|| format!("cancelling the payout of order {order_id}"))?;
    Ok(())
}

/// The refund of `order_id`'s payment succeeded: a destination charge's transfer and fee were
/// reversed with it (the refund asked for both).
pub(crate) fn refund_settled(db: &dyn Database, order_id: &str, now_ms: u64) -> anyhow::Result<()> {
    db.execute(
        "UPDATE payouts SET state = 'reversed', updated_at_ms = ? WHERE order_id = ? \
         AND charge_type = 'destination' AND state = 'transferred'",
        &[SqlValue::from_u64(now_ms)?, order_id.into()],
    )
    .with_context(|| format!("recording the reversal of order {order_id}'s payout"))?;
    Ok(())
}

/// Whether refunding `order_id`'s payment must take its transfer and fee back: it was a
/// destination charge.
pub(crate) fn refund_reverses_transfer(db: &dyn Database, order_id: &str) -> anyhow::Result<bool> {
    Ok(payout(db, order_id)?.is_some_and(|payout| payout.charge_type == ChargeType::Destination))
}

/// A payout waiting for its Transfer that can be made now.
struct Due {
    payout: Payout,
    account: String,
    intent: String,
}

/// Makes the Transfers that are due: platform charges of complete orders whose seller's account
/// is enabled (only `seller`'s, when given). A Stripe failure leaves the payout waiting for the
/// next pass; the idempotency key makes a retry of a transfer whose answer was lost return the
/// same Transfer. Returns how many payouts it recorded as transferred.
pub fn pay_out(
    db: &dyn Database,
    gateway: &dyn PaymentGateway,
    seller: Option<&str>,
    now_ms: u64,
) -> anyhow::Result<usize> {
    let mut transferred = 0;
    for due in due_transfers(db, seller)? {
        let order_id = &due.payout.order_id;
        let net = i64::try_from(due.payout.net_cents()).unwrap_or(i64::MAX);
        let transfer = gateway.retrieve_intent(&due.intent).and_then(|intent| {
            let charge = intent.charge_id().ok_or_else(|| {
                StripeError::Unavailable(format!("PaymentIntent {} has no charge", intent.id))
            })?;
            gateway.create_transfer(order_id, net, &due.account, charge)
        });
        let transfer = match transfer {
            Ok(transfer) => transfer,
            Err(error) => {
                crate::warn(&format!(
                    "paying out order {order_id} to {} failed, to be retried: {error}",
                    due.account
                ));
                continue;
            }
        };
        let rows = db
            .execute(
                "UPDATE payouts SET state = 'transferred', transfer_id = ?, account_id = ?, \
                 updated_at_ms = ? WHERE order_id = ? AND state = 'waiting_for_account' \
                 RETURNING order_id",
                &[
                    transfer.id.as_str().into(),
                    due.account.as_str().into(),
                    SqlValue::from_u64(now_ms)?,
                    order_id.as_str().into(),
                ],
            )
            .with_context(|| format!("recording the transfer of order {order_id}"))?;
        if !rows.is_empty() {
            transferred += 1;
            log_line::Line::new(log_line::Level::Info, "payout")
                .field("orderId", order_id.as_str())
                .field("transferId", transfer.id.as_str())
                .field("netCents", due.payout.net_cents())
                .emit();
        }
    }
    Ok(transferred)
}

fn due_transfers(db: &dyn Database, seller: Option<&str>) -> anyhow::Result<Vec<Due>> {
    let rows = db
        .execute(
            &format!(
                "SELECT {PAYOUT_COLUMNS}, a.stripe_id AS account, pay.stripe_id AS intent \
                 FROM payouts p JOIN orders o ON o.id = p.order_id AND o.status = 'complete' \
                 JOIN payout_accounts a ON a.user_id = p.seller_id AND a.enabled = 1 \
                 JOIN payments pay ON pay.order_id = p.order_id AND pay.status = 'succeeded' \
                 WHERE p.state = 'waiting_for_account' AND (? IS NULL OR p.seller_id = ?) \
                 ORDER BY p.created_at_ms LIMIT ?"
            ),
            &[
                seller.into(),
                seller.into(),
                i64::from(PAY_OUT_BATCH).into(),
            ],
        )
        .context("listing the payouts due")?;
    rows.iter()
        .map(|row| {
            Ok(Due {
                payout: payout_from_row(&row)?,
                account: row.text("account")?.to_owned(),
                intent: row.text("intent")?.to_owned(),
            })
        })
        .collect()
}

/// A seller's sales, newest first: the payouts whose payment succeeded.
pub(crate) fn sales(db: &dyn Database, seller_id: &str) -> anyhow::Result<Vec<Payout>> {
    payouts_where(
        db,
        "p.seller_id = ? AND p.state IN ('waiting_for_account', 'transferred', 'reversed') \
         ORDER BY p.created_at_ms DESC",
        &[seller_id.into()],
    )
}

/// The Redis key under which the event component leaves [`waiting_payouts_json`] on every
/// housekeeping tick, for `ticketing-ops payouts`.
pub const WAITING_PAYOUTS_KEY: &str = "payments:waiting-payouts";

/// The payouts waiting for their seller's account (or for a Transfer Stripe refused), oldest
/// first, as the operator's tool reads them: `[{"orderId", "sellerId", "netCents", "currency",
/// "since"}]`.
pub fn waiting_payouts_json(db: &dyn Database) -> anyhow::Result<String> {
    let waiting = payouts_where(
        db,
        "p.state = 'waiting_for_account' ORDER BY p.created_at_ms",
        &[],
    )?;
    let listing: Vec<serde_json::Value> = waiting
        .iter()
        .map(|payout| {
            serde_json::json!({
                "orderId": payout.order_id,
                "sellerId": payout.seller_id,
                "netCents": payout.net_cents(),
                "currency": payout.currency,
                "since": domain::rfc3339_millis(payout.created_at_ms),
            })
        })
        .collect();
    Ok(serde_json::to_string(&listing)?)
}

fn payouts_where(
    db: &dyn Database,
    condition: &str,
    params: &[SqlValue],
) -> anyhow::Result<Vec<Payout>> {
    let rows = db
        .execute(
            &format!(
                "SELECT {PAYOUT_COLUMNS} FROM payouts p LEFT JOIN orders o ON o.id = p.order_id \
                 WHERE {condition}"
            ),
            params,
        )
        .context("listing payouts")?;
    rows.iter().map(|row| payout_from_row(&row)).collect()
}

fn payout_from_row(row: &Row<'_>) -> anyhow::Result<Payout> {
    let order_id = row.text("order_id")?;
    let state = row.text("state")?;
    Ok(Payout {
        order_id: order_id.to_owned(),
        seller_id: row.text("seller_id")?.to_owned(),
        charge_type: match row.text("charge_type")? {
            "destination" => ChargeType::Destination,
            _ => ChargeType::Platform,
        },
        account_id: row.optional_text("account_id")?.map(str::to_owned),
        amount_cents: unsigned(row, "amount_cents")?,
        fee_cents: unsigned(row, "fee_cents")?,
        currency: row.text("currency")?.to_owned(),
        state: PayoutState::parse(state)
            .with_context(|| format!("stored state {state:?} of order {order_id}'s payout"))?,
        created_at_ms: unsigned(row, "created_at_ms")?,
        ticket_id: row.optional_text("ticket_id")?.map(str::to_owned),
    })
}

fn account_from_row(row: &Row<'_>) -> anyhow::Result<PayoutAccount> {
    let due = row.text("requirements_due")?;
    Ok(PayoutAccount {
        stripe_id: row.text("stripe_id")?.to_owned(),
        enabled: row.integer("enabled")? == 1,
        payouts_enabled: row.integer("payouts_enabled")? == 1,
        requirements_due: serde_json::from_str(due)
            .with_context(|| format!("stored requirements {due:?}"))?,
    })
}

#[cfg(test)]
mod tests {
    use api::Method;
    use domain::Clock;
    use serde_json::json;

    use super::*;
    use crate::settlement;
    use crate::testing::{
        BUYER, NOW_MS, SELLER, TestApp, WINDOW_MS, account_id, connect_account, json,
    };

    fn state(app: &TestApp, order_id: &str) -> &'static str {
        payout(&app.db, order_id)
            .expect("lookup")
            .expect("a payout")
            .state
            .as_str()
    }

    fn pay(app: &TestApp, order_id: &str) {
        let paid = app.pay(
            Some(BUYER),
            &json!({ "orderId": order_id, "paymentMethodId": "pm_card_visa" }),
        );
        assert_eq!(paid.status, 201);
    }

    /// SELLER connects an account; `enabled`: and finishes onboarding.
    fn onboard(app: &TestApp, enabled: bool) {
        assert_eq!(
            app.send(Method::Post, "/api/payouts/account", SELLER)
                .status,
            201
        );
        if enabled {
            let account = connect_account(&account_id(SELLER), true);
            assert_eq!(app.account_updated(&account, NOW_MS / 1000).status, 200);
        }
    }

    fn pay_out_now(app: &TestApp) -> usize {
        pay_out(&app.db, &app.stripe, None, app.clock.now_ms()).expect("pays out")
    }

    #[test]
    fn the_fee_is_rounded_down_to_the_cent() {
        assert_eq!(fee_cents(1999, 500), 99);
        assert_eq!(fee_cents(2000, 500), 100);
        assert_eq!(fee_cents(1, 5000), 0);
        assert_eq!(fee_cents(1999, 0), 0);
        assert_eq!(fee_cents(u64::MAX, 5000), u64::MAX / 2);
    }

    #[test]
    fn a_sale_by_an_enabled_seller_is_a_destination_charge_with_the_exact_fee() {
        let app = TestApp::new();
        onboard(&app, true);
        let order = app.order(1999);
        pay(&app, &order);
        let intent = app.payment(&order).expect("a payment").1;
        assert_eq!(
            app.stripe.destinations.borrow()[&intent],
            (account_id(SELLER), 99)
        );
        assert_eq!(state(&app, &order), "transferred");
        // Stripe moved the money with the charge: no transfer of ours, ever.
        app.complete(&order, 1);
        assert_eq!(pay_out_now(&app), 0);
        assert_eq!(app.stripe.transfer_calls.get(), 0);
        let sales = json(&app.send(Method::Get, "/api/payouts", SELLER));
        assert_eq!(sales.as_array().map(Vec::len), Some(1));
        assert_eq!(sales[0]["orderId"], json!(order));
        assert_eq!(
            (
                &sales[0]["priceCents"],
                &sales[0]["feeCents"],
                &sales[0]["netCents"]
            ),
            (&json!(1999), &json!(99), &json!(1900))
        );
        assert_eq!(sales[0]["state"], "transferred");
        assert_eq!(sales[0]["ticketId"], "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f");
        // Nobody else sees the sale.
        let others = json(&app.send(Method::Get, "/api/payouts", BUYER));
        assert_eq!(others, json!([]));
    }

    #[test]
    fn a_sale_before_onboarding_is_paid_out_once_when_the_account_is_enabled() {
        let app = TestApp::new();
        onboard(&app, false);
        let order = app.order(1999);
        pay(&app, &order);
        let intent = app.payment(&order).expect("a payment").1;
        assert!(app.stripe.destinations.borrow().is_empty());
        assert_eq!(state(&app, &order), "waiting_for_account");
        // Not while the order is not complete, nor while the account is not enabled.
        assert_eq!(pay_out_now(&app), 0);
        app.complete(&order, 1);
        assert_eq!(pay_out_now(&app), 0);
        assert_eq!(
            waiting_payouts_json(&app.db).expect("listing"),
            json!([{"orderId": order, "sellerId": SELLER, "netCents": 1900, "currency": "usd",
                    "since": domain::rfc3339_millis(NOW_MS)}])
            .to_string()
        );
        let enabled = connect_account(&account_id(SELLER), true);
        for _ in 0..3 {
            assert_eq!(app.account_updated(&enabled, NOW_MS / 1000 + 1).status, 200);
        }
        assert_eq!(pay_out_now(&app), 0);
        assert_eq!(app.stripe.transfer_calls.get(), 1);
        let transfers = app.stripe.transfers.borrow();
        let made: Vec<_> = transfers.values().collect();
        let charge = format!("ch_{}", &intent[3..]);
        assert_eq!(made, [&(order.clone(), 1900, account_id(SELLER), charge)]);
        assert_eq!(state(&app, &order), "transferred");
        assert_eq!(waiting_payouts_json(&app.db).expect("listing"), "[]");
    }

    #[test]
    fn a_transfer_stripe_did_not_answer_is_retried_and_made_once() {
        let app = TestApp::new();
        onboard(&app, false);
        let order = app.order(2500);
        pay(&app, &order);
        app.complete(&order, 1);
        app.stripe.down.set(true);
        let enabled = connect_account(&account_id(SELLER), true);
        assert_eq!(app.account_updated(&enabled, NOW_MS / 1000 + 1).status, 200);
        assert_eq!(pay_out_now(&app), 0);
        assert_eq!(state(&app, &order), "waiting_for_account");
        app.stripe.down.set(false);
        assert_eq!(pay_out_now(&app), 1);
        assert_eq!(pay_out_now(&app), 0);
        assert_eq!(app.stripe.transfers.borrow().len(), 1);
        assert_eq!(state(&app, &order), "transferred");
    }

    #[test]
    fn a_late_destination_charge_is_refunded_with_its_transfer_and_fee() {
        let app = TestApp::new();
        onboard(&app, true);
        let order = app.order(1999);
        let started = app.pay(Some(BUYER), &json!({ "orderId": order }));
        assert_eq!(started.status, 201);
        let intent = app.payment(&order).expect("a payment").1;
        app.advance(WINDOW_MS + 1_000);
        app.stripe.succeed(&intent);
        let settled = settlement::succeeded(
            &app.db,
            &app.stripe,
            &intent,
            app.clock.now_ms(),
            app.clock.now_ms(),
        )
        .expect("settles")
        .expect("ours");
        assert_eq!(settled.status.as_str(), "refunded");
        assert_eq!(*app.stripe.reversing_refunds.borrow(), [true]);
        assert_eq!(state(&app, &order), "reversed");
        let sales = json(&app.send(Method::Get, "/api/payouts", SELLER));
        assert_eq!(sales[0]["state"], "reversed");
    }

    #[test]
    fn a_platform_charge_refunded_before_any_transfer_is_never_paid_out() {
        let app = TestApp::new();
        let order = app.order(1999);
        pay(&app, &order);
        assert_eq!(state(&app, &order), "waiting_for_account");
        // The buyer's cancellation won at the orders service.
        app.cancel(&order, 1);
        settlement::refund_pending(&app.db, &app.stripe, NOW_MS).expect("refunds");
        assert_eq!(*app.stripe.reversing_refunds.borrow(), [false]);
        assert_eq!(state(&app, &order), "cancelled");
        onboard(&app, true);
        assert_eq!(pay_out_now(&app), 0);
        assert_eq!(
            json(&app.send(Method::Get, "/api/payouts", SELLER)),
            json!([])
        );
    }

    #[test]
    fn an_order_from_before_payouts_is_charged_to_the_platform_alone() {
        let app = TestApp::new();
        let order = app.order_from(None, 1999);
        pay(&app, &order);
        assert_eq!(payout(&app.db, &order).expect("lookup"), None);
        assert!(app.stripe.destinations.borrow().is_empty());
    }

    #[test]
    fn a_seller_connects_one_account_and_follows_its_status() {
        let app = TestApp::new();
        let none = json(&app.send(Method::Get, "/api/payouts/account", SELLER));
        assert_eq!(
            none,
            json!({"status": "none", "payoutsEnabled": false, "requirementsDue": []})
        );
        let dashboard = app.send(Method::Post, "/api/payouts/dashboard", SELLER);
        assert_eq!(dashboard.status, 400);
        for _ in 0..2 {
            let connected = app.send(Method::Post, "/api/payouts/account", SELLER);
            assert_eq!(connected.status, 201);
            let body = json(&connected);
            assert_eq!(body["status"], "pending");
            let url = body["url"].as_str().expect("a link");
            assert!(
                url.contains("r=https://tickets.example/tickets/mine?payouts=done")
                    && url.contains("f=https://tickets.example/tickets/mine?payouts=refresh"),
                "{url}"
            );
        }
        assert_eq!(*app.stripe.accounts.borrow(), [SELLER]);
        let pending = json(&app.send(Method::Get, "/api/payouts/account", SELLER));
        assert_eq!(
            pending["requirementsDue"],
            json!(["external_account", "tos_acceptance.date"])
        );
        let account = connect_account(&account_id(SELLER), true);
        // Signed with neither endpoint's secret: refused, and nothing changes.
        let forged = app.account_updated_signed(&account, NOW_MS / 1000 + 10, "whsec_forged");
        assert_eq!(forged.status, 400);
        let still = json(&app.send(Method::Get, "/api/payouts/account", SELLER));
        assert_eq!(still["status"], "pending");
        app.account_updated(&account, NOW_MS / 1000 + 10);
        // An older event, delivered late, does not undo the newer one.
        let older = connect_account(&account_id(SELLER), false);
        app.account_updated(&older, NOW_MS / 1000 + 5);
        let enabled = json(&app.send(Method::Get, "/api/payouts/account", SELLER));
        assert_eq!(
            enabled,
            json!({"status": "enabled", "payoutsEnabled": true, "requirementsDue": []})
        );
        let dashboard = app.send(Method::Post, "/api/payouts/dashboard", SELLER);
        assert_eq!(dashboard.status, 201);
        assert_eq!(
            json(&dashboard)["url"],
            format!("https://connect.stripe.com/express/{}", account_id(SELLER))
        );
    }

    #[test]
    fn the_sellers_routes_require_a_signed_in_user() {
        let app = TestApp::new();
        for (method, path) in [
            (Method::Get, "/api/payouts"),
            (Method::Get, "/api/payouts/account"),
            (Method::Post, "/api/payouts/account"),
            (Method::Post, "/api/payouts/dashboard"),
        ] {
            let response = app.handle(&api::Request::new(method, path));
            assert_eq!(response.status, 401, "{path}");
        }
        assert!(app.stripe.accounts.borrow().is_empty());
    }
}
