//! The payments service's configuration, read from Spin variables and validated once.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `jwt_public_key` | base64 of the Ed25519 key that signs session tokens (HTTP component) | required |
//! | `stripe_api_base` | Stripe's API, or a fake's; also the only host payments may reach | `https://api.stripe.com` |
//! | `stripe_secret_key` | the secret API key (`sk_...`), granted to payments alone | required |
//! | `stripe_webhook_secret` | the webhook endpoint's signing secret (`whsec_...`) (HTTP component) | required |
//! | `stripe_connect_webhook_secret` | the signing secret of a second endpoint at the same URL for connected accounts' events, when Stripe sends those apart (HTTP component) | none |
//! | `stripe_publishable_key` | the publishable key (`pk_...`) the browser's Stripe.js uses (HTTP component) | required |
//! | `stripe_js_url` | where the browser loads Stripe.js (HTTP component) | `https://js.stripe.com/v3/` |
//! | `currency` | the currency prices are charged in, an ISO code | `usd` |
//! | `platform_fee_bps` | the platform's fee on each sale, in basis points (1/100 %), 0 to 5000 (HTTP component) | `500` |
//!
//! A variable set to an empty (or all-blank) string counts as unset.

use api::Secret;
pub use api::config::{ConfigError, VariableSource};
use api::config::{optional, required};
use session::TokenVerifier;

use crate::stripe::{StripeApi, parse_currency};

pub const STRIPE_API_BASE: &str = "stripe_api_base";
pub const STRIPE_SECRET_KEY: &str = "stripe_secret_key";
pub const STRIPE_WEBHOOK_SECRET: &str = "stripe_webhook_secret";
pub const STRIPE_CONNECT_WEBHOOK_SECRET: &str = "stripe_connect_webhook_secret";
pub const STRIPE_PUBLISHABLE_KEY: &str = "stripe_publishable_key";
pub const STRIPE_JS_URL: &str = "stripe_js_url";
pub const CURRENCY: &str = "currency";
pub const PLATFORM_FEE_BPS: &str = "platform_fee_bps";

const DEFAULT_API_BASE: &str = "https://api.stripe.com";
const DEFAULT_JS_URL: &str = "https://js.stripe.com/v3/";
const DEFAULT_CURRENCY: &str = "usd";
const DEFAULT_FEE_BPS: u16 = 500;
/// Half of every sale: a higher fee is a mistake in the configuration, not a business.
const MAX_FEE_BPS: u16 = 5000;

/// The payments HTTP component's configuration.
#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    pub verifier: TokenVerifier,
    pub stripe: StripeApi,
    pub webhook_secret: Secret,
    /// A Connect endpoint's own secret: Stripe signs connected accounts' events (`account.updated`)
    /// for an endpoint that listens to them, which is not the one for the platform's events.
    pub connect_webhook_secret: Option<Secret>,
    pub publishable_key: String,
    pub js_url: String,
    /// The platform's fee on each sale, in basis points; the rest is paid out to the seller.
    pub platform_fee_bps: u16,
}

impl PaymentsConfig {
    /// The secrets a webhook's signature may be made with: the platform endpoint's, and the
    /// Connect endpoint's when there is one.
    pub fn webhook_secrets(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.webhook_secret.expose())
            .chain(self.connect_webhook_secret.as_ref().map(Secret::expose))
    }

    /// Reads and validates every variable; the first problem found is the error.
    pub fn from_variables(vars: &dyn VariableSource) -> Result<PaymentsConfig, ConfigError> {
        Ok(PaymentsConfig {
            verifier: api::config::session_verifier(vars)?,
            stripe: stripe_api(vars)?,
            webhook_secret: Secret::new(required(vars, STRIPE_WEBHOOK_SECRET)?),
            connect_webhook_secret: optional(vars, STRIPE_CONNECT_WEBHOOK_SECRET).map(Secret::new),
            publishable_key: required(vars, STRIPE_PUBLISHABLE_KEY)?,
            js_url: url(vars, STRIPE_JS_URL, DEFAULT_JS_URL)?,
            platform_fee_bps: fee_bps(vars)?,
        })
    }
}

fn fee_bps(vars: &dyn VariableSource) -> Result<u16, ConfigError> {
    match optional(vars, PLATFORM_FEE_BPS) {
        None => Ok(DEFAULT_FEE_BPS),
        Some(text) => text
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|bps| *bps <= MAX_FEE_BPS)
            .ok_or_else(|| {
                ConfigError::invalid(
                    PLATFORM_FEE_BPS,
                    "must be a whole number of basis points from 0 to 5000",
                )
            }),
    }
}

/// Where Stripe is and the key to call it with: all the event component needs (for refunds).
pub fn stripe_api(vars: &dyn VariableSource) -> Result<StripeApi, ConfigError> {
    let currency_code = optional(vars, CURRENCY).unwrap_or_else(|| DEFAULT_CURRENCY.to_owned());
    let currency = parse_currency(&currency_code).ok_or_else(|| {
        ConfigError::invalid(CURRENCY, "must be an ISO currency code such as usd")
    })?;
    Ok(StripeApi {
        api_base: url(vars, STRIPE_API_BASE, DEFAULT_API_BASE)?,
        secret_key: Secret::new(required(vars, STRIPE_SECRET_KEY)?),
        currency,
    })
}

/// An `http://` or `https://` URL, or `default` when unset.
fn url(
    vars: &dyn VariableSource,
    name: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    let value = optional(vars, name).unwrap_or_else(|| default.to_owned());
    if value.starts_with("https://") || value.starts_with("http://") {
        Ok(value)
    } else {
        Err(ConfigError::invalid(
            name,
            "must be an http:// or https:// URL",
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use api::config::JWT_PUBLIC_KEY;
    use session::SigningKey;

    use super::*;

    fn variables() -> HashMap<&'static str, String> {
        let key = SigningKey::from_seed(&[7; 32])
            .expect("valid seed")
            .verifying_key()
            .to_base64_raw();
        HashMap::from([
            (JWT_PUBLIC_KEY, key),
            (STRIPE_SECRET_KEY, "sk_test_abc".to_owned()),
            (STRIPE_WEBHOOK_SECRET, "whsec_abc".to_owned()),
            (STRIPE_PUBLISHABLE_KEY, "pk_test_abc".to_owned()),
        ])
    }

    #[test]
    fn the_secrets_alone_give_the_documented_defaults() {
        let config = PaymentsConfig::from_variables(&variables()).expect("valid");
        assert_eq!(config.stripe.api_base, "https://api.stripe.com");
        assert_eq!(config.stripe.currency.to_string(), "usd");
        assert_eq!(config.js_url, "https://js.stripe.com/v3/");
        assert_eq!(config.publishable_key, "pk_test_abc");
        assert_eq!(config.stripe.secret_key.expose(), "sk_test_abc");
        assert_eq!(config.webhook_secret.expose(), "whsec_abc");
        assert_eq!(config.platform_fee_bps, 500);
        assert_eq!(config.webhook_secrets().collect::<Vec<_>>(), ["whsec_abc"]);
    }

    #[test]
    fn every_setting_is_read() {
        let mut vars = variables();
        vars.extend([
            (STRIPE_API_BASE, "http://127.0.0.1:8420".to_owned()),
            (
                STRIPE_JS_URL,
                "http://127.0.0.1:8420/js.stripe.com/v3/".to_owned(),
            ),
            (CURRENCY, "EUR".to_owned()),
            (PLATFORM_FEE_BPS, "250".to_owned()),
            (STRIPE_CONNECT_WEBHOOK_SECRET, "whsec_connect".to_owned()),
        ]);
        let config = PaymentsConfig::from_variables(&vars).expect("valid");
        assert_eq!(
            config.webhook_secrets().collect::<Vec<_>>(),
            ["whsec_abc", "whsec_connect"]
        );
        assert_eq!(config.platform_fee_bps, 250);
        assert_eq!(config.stripe.api_base, "http://127.0.0.1:8420");
        assert_eq!(config.js_url, "http://127.0.0.1:8420/js.stripe.com/v3/");
        assert_eq!(config.stripe.currency.to_string(), "eur");
    }

    #[test]
    fn missing_secrets_and_bad_values_name_their_variable() {
        for name in [
            STRIPE_SECRET_KEY,
            STRIPE_WEBHOOK_SECRET,
            STRIPE_PUBLISHABLE_KEY,
        ] {
            let mut vars = variables();
            vars.remove(name);
            let error = PaymentsConfig::from_variables(&vars).expect_err(name);
            assert_eq!(error.variable(), name);
        }
        for (name, value) in [
            (STRIPE_API_BASE, "api.stripe.com"),
            (STRIPE_JS_URL, "js.stripe.com/v3"),
            (CURRENCY, "dollars"),
            (PLATFORM_FEE_BPS, "5001"),
            (PLATFORM_FEE_BPS, "-1"),
            (PLATFORM_FEE_BPS, "5%"),
        ] {
            let mut vars = variables();
            vars.insert(name, value.to_owned());
            let error = PaymentsConfig::from_variables(&vars).expect_err(name);
            assert_eq!(error.variable(), name);
        }
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = PaymentsConfig::from_variables(&variables()).expect("valid");
        let text = format!("{config:?}");
        assert!(
            !text.contains("sk_test_abc") && !text.contains("whsec_abc"),
            "{text}"
        );
    }
}
