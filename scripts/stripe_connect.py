"""Stripe Connect and idempotent requests for localstripe 1.15.10, which has neither. fake_stripe.py
installs it (`install()`, which imports localstripe's server itself, after its changes).

What it adds, following the shapes and errors of Stripe's API reference:

- `Idempotency-Key` on every POST under /v1/ (a middleware): the first answer to a key, scoped by
  the API key and the `Stripe-Account` header, is replayed (`Idempotent-Replayed: true`) to a
  retry with the same path and parameters, and a retry with others is an `idempotency_error`.
  As Stripe does, every answer of an endpoint that ran is kept, 500s included, for 24 hours; a
  request refused for its parameters before anything ran is not, nor one that an injected outage
  stopped.
- Express (and Custom, Standard) accounts: POST/GET /v1/accounts, GET /v1/accounts/{id}; account
  links (POST /v1/account_links), whose url, on this server (/_connect/onboarding/<token>),
  completes onboarding when a browser opens it and redirects to `return_url` (once; a used or
  expired link redirects to `refresh_url`), sending `account.updated`; login links (POST
  /v1/accounts/{id}/login_links) to a small dashboard page (/_connect/dashboard/<account>).
- Destination charges: PaymentIntents take `transfer_data[destination]`, `application_fee_amount`
  and `transfer_group`. When the charge succeeds, its full amount is transferred to the
  destination and the fee (an ApplicationFee, `fee_...`) is taken back to the platform, as
  Stripe's documentation of destination charges describes.
- Transfers (POST/GET /v1/transfers, GET /v1/transfers/{id}), their reversals
  (/v1/transfers/{id}/reversals), ApplicationFees (GET /v1/application_fees...), and refunds
  with `reverse_transfer` and `refund_application_fee`.
- Balances: GET /v1/balance is the platform's, or with `Stripe-Account` that account's; charges,
  refunds, transfers, reversals and fees move them (no Stripe fees, everything available at once).
- Events `account.updated` (with `account` and `data.previous_attributes`), `transfer.created`
  and `transfer.reversed`, sent through localstripe's own signed webhooks.
- An index of localstripe's store by kind, which its lists read: it scans the whole store for
  them, three times for every charge it exports (its refunds), so that each request slowed as
  the store grew.
- For tests, under /_config/ like localstripe's webhooks: POST/GET/DELETE /_config/faults (make
  the next `count` requests to a path fail with a 500: `down` runs nothing, `lost_answer` runs
  the request, keeps its idempotent answer, and loses it on the way back), and POST/DELETE
  /_config/clock (`advance` this module's clock by seconds, for expiring links and keys).
"""

import copy
import html
import itertools
import logging
import re
import secrets
import sys
import time
import urllib.parse

from aiohttp import web
from localstripe.errors import UserError, json_response
from localstripe.resources import (BalanceTransaction, Charge, Event, List, PaymentIntent, Refund,
                                   StripeObject, extra_apis, random_id, store, try_convert_to_bool,
                                   try_convert_to_int)
from localstripe.webhooks import schedule_webhook

LINK_LIFETIME = 300
KEY_LIFETIME = 24 * 3600
PLATFORM_CURRENCY = "usd"
ACCOUNT_TYPES = ("custom", "express", "standard")
BUSINESS_TYPES = ("company", "government_entity", "individual", "non_profit")
CAPABILITIES = {
    "acss_debit_payments", "affirm_payments", "afterpay_clearpay_payments", "bancontact_payments",
    "card_issuing", "card_payments", "cartes_bancaires_payments", "eps_payments", "giropay_payments",
    "ideal_payments", "klarna_payments", "link_payments", "p24_payments", "sepa_debit_payments",
    "sofort_payments", "tax_reporting_us_1099_k", "transfers", "us_bank_account_ach_payments"}
COUNTRY_CURRENCIES = {
    "AT": "eur", "AU": "aud", "BE": "eur", "BG": "bgn", "CA": "cad", "CH": "chf", "CY": "eur",
    "CZ": "czk", "DE": "eur", "DK": "dkk", "EE": "eur", "ES": "eur", "FI": "eur", "FR": "eur",
    "GB": "gbp", "GR": "eur", "HK": "hkd", "HR": "eur", "HU": "huf", "IE": "eur", "IT": "eur",
    "JP": "jpy", "LT": "eur", "LU": "eur", "LV": "eur", "MT": "eur", "MX": "mxn", "NL": "eur",
    "NO": "nok", "NZ": "nzd", "PL": "pln", "PT": "eur", "RO": "ron", "SE": "sek", "SG": "sgd",
    "SI": "eur", "SK": "eur", "US": "usd"}
PERSON_FIELDS = ("individual.address.city", "individual.address.line1",
                 "individual.address.postal_code", "individual.dob.day", "individual.dob.month",
                 "individual.dob.year", "individual.email", "individual.first_name",
                 "individual.last_name", "individual.phone")
COMPANY_FIELDS = ("company.address.city", "company.address.line1", "company.address.postal_code",
                  "company.name", "company.phone", "company.tax_id", "representative.first_name",
                  "representative.last_name", "representative.dob.day", "representative.dob.month",
                  "representative.dob.year")
CHARGE_FIELDS = ("application_fee", "application_fee_amount", "destination", "on_behalf_of",
                 "transfer", "transfer_data", "transfer_group")

CAPABILITY_NEEDED = ("Your destination account needs to have at least one of the following "
                     "capabilities enabled: transfers, crypto_transfers, legacy_payments")
FEE_NEEDS_DESTINATION = (
    "Can only apply an application_fee_amount when the PaymentIntent is attempting a direct "
    "payment (using an OAuth key or Stripe-Account header) or destination payment (using "
    "`transfer_data[destination]`).")
PLATFORM_FUNDS_LOW = (
    "You have insufficient funds in your Stripe account for this transfer. Your card balance is "
    "too low. You can use the /v1/balance endpoint to view your Stripe balance (for more "
    "details, see stripe.com/docs/api#balance).")
NOT_ONBOARDED = "Cannot create a login link for an account that has not completed onboarding."
OTHER_PARAMETERS = ("Keys for idempotent requests can only be used with the same parameters they "
                    "were first used with. Try using a key other than '{}' if you meant to execute "
                    "a different request.")
OTHER_ENDPOINT = ("Keys for idempotent requests can only be used for the same endpoint they were "
                  "first used for ('{}' vs '{}'). Try using a key other than '{}' if you meant to "
                  "execute a different request.")
KEY_IN_USE = ("There is currently another in-progress request using this Idempotent Key (that "
              "probably means you submitted twice, and the other request is still going "
              "through): {}. Please try again later.")

# Test settings, not Stripe state: kept apart from localstripe's store, so that DELETE
# /_config/data leaves them alone.
CONFIG = {"clock": 0, "faults": []}
SEQUENCE = itertools.count()
log = logging.getLogger(__name__)


def now():
    return int(time.time()) + CONFIG["clock"]


def state():
    """This module's part of localstripe's store (emptied with it by DELETE /_config/data)."""
    found = store.get("connect:state")
    if found is None:
        found = {"ledger": {}, "links": {}, "idempotency": {}}
        store["connect:state"] = found
    return found


# Errors and parameters

class ParamError(UserError):
    """A request refused for its parameters alone, before the endpoint ran: Stripe keeps no
    idempotent answer for it, so a retry under the same key runs."""

    def __init__(self, message, param, code=None):
        contents = {"param": param}
        if code is not None:
            contents["code"] = code
        super().__init__(400, message, contents)


def missing(param):
    return ParamError(f"Missing required param: {param}.", param, "parameter_missing")


def unknown(param):
    return ParamError(f"Received unknown parameter: {param}", param, "parameter_unknown")


def not_modelled(param):
    return ParamError(f"The fake Stripe (scripts/stripe_connect.py) does not model {param}.", param)


def no_such(kind, id, param, status=400):
    return UserError(status, f"No such {kind}: '{id}'", {"param": param, "code": "resource_missing"})


def check_params(data, known, unmodelled=()):
    for name in data:
        if name in unmodelled:
            raise not_modelled(name)
        if name not in known:
            raise unknown(name)


def text(data, name, required=False, param=None):
    value = data.get(name)
    if value is None:
        if required:
            raise missing(param or name)
        return None
    if type(value) is not str:
        raise ParamError("Invalid string", param or name)
    return value


def integer(data, name, minimum=0, required=False):
    value = data.get(name)
    if value is None:
        if required:
            raise missing(name)
        return None
    number = try_convert_to_int(value)
    if type(number) is not int:
        raise ParamError(f"Invalid integer: {value}", name, "parameter_invalid_integer")
    if number < minimum:
        raise ParamError(f"This value must be greater than or equal to {minimum}.", name,
                         "parameter_invalid_integer")
    return number


def flag(data, name, param=None):
    given = data.get(name)
    value = False if given is None else try_convert_to_bool(given)
    if type(value) is not bool:
        raise ParamError(f"Invalid boolean: {data.get(name)}", param or name)
    return value


def metadata(data):
    value = data.get("metadata") or {}
    if type(value) is not dict or any(type(item) is not str for item in value.values()):
        raise ParamError("Invalid object", "metadata")
    return dict(value)


def url(data, name):
    value = text(data, name, required=True)
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ParamError("Not a valid URL", name, "url_invalid")
    return value


def currency(data):
    value = text(data, "currency", required=True)
    if not re.fullmatch("[A-Za-z]{3}", value):
        raise ParamError(f"Invalid currency: {value}.", "currency")
    return value.lower()


def enum(data, name, values, required=False):
    value = text(data, name, required)
    if value is not None and value not in values:
        choices = ", ".join(values[:-1]) + ", or " + values[-1] if len(values) > 2 else \
            " or ".join(values)
        raise ParamError(f"Invalid {name}: must be one of {choices}", name)
    return value


async def form(request):
    from localstripe.server import get_post_data
    return await get_post_data(request) or {}


def query(request):
    from localstripe.server import unflatten_data
    return unflatten_data(request.query)


def origin(request):
    return f"{request.scheme}://{request.host}"


def export(obj, expand=None):
    if not expand:
        return obj._export()
    try:
        return obj._export(expand=expand)
    except AttributeError:  # localstripe's expansion meets an id of no class it knows
        raise ParamError("One of the properties to expand cannot be expanded.", "expand")


# The money: one balance per currency for the platform and for each account

def ledger(owner):
    """The balances of `owner`, an account's id, or None for the platform."""
    return state()["ledger"].setdefault(owner or "platform", {})


def credit(owner, currency, amount):
    book = ledger(owner)
    book[currency] = book.get(currency, 0) + amount


def move(source, target, currency, amount):
    credit(source, currency, -amount)
    credit(target, currency, amount)


def balance(owner, default_currency):
    amounts = ledger(owner) or {default_currency: 0}
    currencies = sorted(amounts)
    body = {
        "object": "balance", "livemode": False,
        "available": [{"amount": amounts[c], "currency": c, "source_types": {"card": amounts[c]}}
                      for c in currencies],
        "pending": [{"amount": 0, "currency": c, "source_types": {"card": 0}} for c in currencies]}
    if owner is None:
        body["connect_reserved"] = [{"amount": 0, "currency": c} for c in currencies]
    return body


# Connect's objects (only underscored methods: localstripe exports every public attribute)

def requirements(due):
    return {"alternatives": [], "current_deadline": None, "currently_due": list(due),
            "disabled_reason": "requirements.past_due" if due else None, "errors": [],
            "eventually_due": list(due), "past_due": list(due), "pending_verification": []}


def object_list(url, items, limit=None, starting_after=None):
    listing = List(url, limit=limit, starting_after=starting_after)
    listing._list = sorted(items, key=lambda item: item._seq, reverse=True)
    return listing


# localstripe's store keyed by `<kind>:<id>`, and the same objects by kind (see the module's
# documentation), kept along with the store by `patch_store`.
BY_KIND = {}


def stored(kind):
    return list(BY_KIND.get(kind, {}).values())


def patch_store():
    kind_store = type(store)
    set_item, del_item, clear = kind_store.__setitem__, kind_store.__delitem__, kind_store.clear

    def of_kind(key):
        return BY_KIND.setdefault(key.split(":", 1)[0], {})

    def indexed_set(self, key, value):
        set_item(self, key, value)
        of_kind(key)[key] = value

    def indexed_del(self, key):
        del_item(self, key)
        of_kind(key).pop(key, None)

    def indexed_clear(self):
        clear(self)
        BY_KIND.clear()

    def indexed_update(self, other=(), **more):
        for key, value in dict(other, **more).items():
            indexed_set(self, key, value)

    def list_all(cls, url, limit=None, starting_after=None, **kwargs):
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        listing = List(url, limit=limit, starting_after=starting_after)
        listing._list = stored(cls.object)
        return listing

    kind_store.__setitem__, kind_store.__delitem__ = indexed_set, indexed_del
    kind_store.clear, kind_store.update = indexed_clear, indexed_update
    for key, value in store.items():
        of_kind(key)[key] = value
    StripeObject._api_list_all = classmethod(list_all)


class Account(StripeObject):
    object = "account"
    _id_prefix = "acct_"

    def __init__(self, type, country, email, capabilities, business_type, default_currency,
                 metadata):
        super().__init__()
        self._seq = next(SEQUENCE)
        self.type = type
        self.country = country
        self.email = email
        self.default_currency = default_currency
        self.business_type = business_type
        self.business_profile = {"mcc": None, "name": None, "product_description": None,
                                 "support_email": None, "url": None}
        self.capabilities = {name: "inactive" for name in capabilities}
        self.charges_enabled = False
        self.payouts_enabled = False
        self.details_submitted = False
        fields = COMPANY_FIELDS if business_type not in (None, "individual") else PERSON_FIELDS
        due = ["business_profile.mcc", "business_profile.url", "external_account",
               "tos_acceptance.date", "tos_acceptance.ip", *fields]
        if business_type is None:
            due.append("business_type")
        self.requirements = requirements(sorted(due))
        self.future_requirements = requirements([])
        self.tos_acceptance = {"date": None}
        self.external_accounts = {"object": "list", "data": [], "has_more": False,
                                  "total_count": 0, "url": f"/v1/accounts/{self.id}/external_accounts"}
        self.metadata = metadata


class Transfer(StripeObject):
    object = "transfer"
    _id_prefix = "tr_"

    def __init__(self, amount, currency, destination, source_transaction=None,
                 transfer_group=None, description=None, metadata=None):
        super().__init__()
        self._seq = next(SEQUENCE)
        self._reversals = []
        self._fee = None  # the ApplicationFee taken back from a destination charge's transfer
        self._of_destination_charge = False
        self.amount = amount
        self.balance_transaction = None
        self.currency = currency
        self.description = description
        self.destination = destination
        self.destination_payment = "py_" + random_id(24)
        self.metadata = metadata or {}
        self.source_transaction = source_transaction
        self.source_type = "card"
        self.transfer_group = transfer_group

    @property
    def amount_reversed(self):
        return sum(reversal.amount for reversal in self._reversals)

    @property
    def reversed(self):
        return self.amount_reversed >= self.amount

    @property
    def reversals(self):
        return object_list(f"/v1/transfers/{self.id}/reversals", self._reversals)


class TransferReversal(StripeObject):
    object = "transfer_reversal"
    _id_prefix = "trr_"

    def __init__(self, transfer, amount, source_refund=None, metadata=None):
        super().__init__()
        self._seq = next(SEQUENCE)
        self.amount = amount
        self.balance_transaction = None
        self.currency = transfer.currency
        self.destination_payment_refund = "pyr_" + random_id(24)
        self.metadata = metadata or {}
        self.source_refund = source_refund
        self.transfer = transfer.id


class ApplicationFee(StripeObject):
    object = "application_fee"
    _id_prefix = "fee_"

    def __init__(self, amount, transfer, charge):
        super().__init__()
        self._seq = next(SEQUENCE)
        self._refunds = []
        self.account = transfer.destination
        self.amount = amount
        self.balance_transaction = None
        self.charge = transfer.destination_payment  # the payment on the connected account
        self.currency = charge.currency
        self.originating_transaction = charge.id

    @property
    def amount_refunded(self):
        return sum(refund.amount for refund in self._refunds)

    @property
    def refunded(self):
        return self.amount_refunded >= self.amount

    @property
    def refunds(self):
        return object_list(f"/v1/application_fees/{self.id}/refunds", self._refunds)


class FeeRefund(StripeObject):
    object = "fee_refund"
    _id_prefix = "fr_"

    def __init__(self, fee, amount):
        super().__init__()
        self._seq = next(SEQUENCE)
        self.amount = amount
        self.balance_transaction = None
        self.currency = fee.currency
        self.fee = fee.id
        self.metadata = {}


def find(kind, id, status=404, param="id"):
    found = store.get(f"{kind}:{id}") if type(id) is str else None
    if found is None:
        raise no_such(kind.replace("_", " "), id, param, status)
    return found


# Moving money between the platform and the accounts

def make_transfer(account, amount, currency, **fields):
    transfer = Transfer(amount, currency, account.id, **fields)
    move(None, account.id, currency, amount)
    schedule_webhook(Event("transfer.created", transfer))
    return transfer


def share(total, done, part, whole, complete):
    """What `part` of `whole` stands for of `total`, of which `done` was already returned; all
    that is left of it once `complete`."""
    if complete:
        return total - done
    return max(0, min(total - done, round(total * part / whole)))


def refund_fee(fee, amount):
    if amount <= 0:
        return None
    refund = FeeRefund(fee, amount)
    fee._refunds.append(refund)
    move(None, fee.account, fee.currency, amount)
    return refund


def make_reversal(transfer, amount, source_refund=None, metadata=None, with_fee=False):
    reversal = TransferReversal(transfer, amount, source_refund, metadata)
    transfer._reversals.append(reversal)
    move(transfer.destination, None, transfer.currency, amount)
    if with_fee and transfer._fee is not None:
        fee = store["application_fee:" + transfer._fee]
        refund_fee(fee, share(fee.amount, fee.amount_refunded, amount, transfer.amount,
                              transfer.reversed))
    schedule_webhook(Event("transfer.reversed", transfer))
    return reversal


def transfer_destination(destination, param):
    account = store.get("account:" + destination)
    if account is None:
        raise no_such("destination", destination, param)
    if account.capabilities.get("transfers") != "active":
        raise UserError(400, CAPABILITY_NEEDED,
                        {"param": param, "code": "insufficient_capabilities_for_transfer"})
    return account


def settle_destination_charge(charge):
    """Once a destination charge succeeded: its (captured) amount goes to the destination, and
    the application fee comes back from it to the platform."""
    intent = store.get("payment_intent:" + charge.payment_intent) if charge.payment_intent else None
    terms = getattr(intent, "transfer_data", None)
    if not terms:
        return
    account = store["account:" + terms["destination"]]
    amount = getattr(charge, "_captured_amount", None)
    amount = charge.amount if amount is None else amount
    transfer = make_transfer(account, amount, charge.currency, source_transaction=charge.id,
                             transfer_group=intent.transfer_group)
    transfer._of_destination_charge = True
    charge.transfer = transfer.id
    charge.transfer_data = dict(terms)
    charge.destination = account.id
    charge.transfer_group = intent.transfer_group
    charge.application_fee_amount = intent.application_fee_amount
    fee_amount = min(intent.application_fee_amount or 0, amount)
    if fee_amount > 0:
        fee = ApplicationFee(fee_amount, transfer, charge)
        move(account.id, None, fee.currency, fee_amount)
        transfer._fee = fee.id
        charge.application_fee = fee.id


def settle_refund(refund, reverse_transfer, refund_application_fee):
    """A refund of a destination charge reverses its transfer and refunds its application fee
    when asked to, in proportion to the amount refunded (all that is left once the charge is
    refunded in full)."""
    charge = store["charge:" + refund.charge]
    complete = charge.amount_refunded >= charge.amount
    transfer = store.get("transfer:" + charge.transfer) if charge.transfer else None
    if reverse_transfer and transfer is not None:
        amount = share(transfer.amount, transfer.amount_reversed, refund.amount, charge.amount,
                       complete)
        if amount > 0:
            refund.transfer_reversal = make_reversal(transfer, amount, source_refund=refund.id).id
    fee = store.get("application_fee:" + charge.application_fee) if charge.application_fee else None
    if refund_application_fee and fee is not None:
        refund_fee(fee, share(fee.amount, fee.amount_refunded, refund.amount, charge.amount,
                              complete))


# localstripe's own classes, extended

def check_fee(fee, amount, has_destination):
    if fee is None:
        return
    if not has_destination:
        raise ParamError(FEE_NEEDS_DESTINATION, "application_fee_amount")
    amount = try_convert_to_int(amount)
    if type(amount) is int and fee > amount:
        raise ParamError(f"The application_fee_amount ({fee}) must be less than or equal to the "
                         f"PaymentIntent's amount ({amount}).", "application_fee_amount")


def destination_terms(amount, transfer_data, fee_value):
    """Checks a PaymentIntent's transfer_data and application_fee_amount as Stripe does."""
    terms = None
    if transfer_data is not None:
        if type(transfer_data) is not dict:
            raise ParamError("Invalid object", "transfer_data")
        for key in transfer_data:
            if key == "amount":
                raise not_modelled("transfer_data[amount]")
            if key != "destination":
                raise unknown(f"transfer_data[{key}]")
        destination = text(transfer_data, "destination", True, "transfer_data[destination]")
        terms = {"amount": None, "destination": destination}
    fee = integer({"application_fee_amount": fee_value}, "application_fee_amount")
    check_fee(fee, amount, terms is not None)
    if terms is not None:
        transfer_destination(terms["destination"], "transfer_data[destination]")
    return terms, fee


def patch_payment_intents():
    create = PaymentIntent.__init__

    def init(intent, transfer_data=None, application_fee_amount=None, transfer_group=None,
             **data):
        terms, fee = destination_terms(data.get("amount"), transfer_data, application_fee_amount)
        group = text({"transfer_group": transfer_group}, "transfer_group")
        create(intent, **data)
        intent.transfer_data = terms
        intent.application_fee_amount = fee
        intent.transfer_group = group
        intent.on_behalf_of = None

    update = PaymentIntent._api_update

    def api_update(cls, id, **data):
        if "transfer_data" in data:
            raise not_modelled("an update of transfer_data")
        if "application_fee_amount" not in data:
            return update(id, **data)
        intent = cls._api_retrieve(id)
        fee = integer(data, "application_fee_amount")
        check_fee(fee, intent.amount, intent.transfer_data is not None)
        del data["application_fee_amount"]
        intent = update(id, **data)
        intent.application_fee_amount = fee
        return intent

    PaymentIntent.__init__ = init
    PaymentIntent._api_update = classmethod(api_update)


def patch_charges():
    create = Charge.__init__

    def init(charge, *args, **data):
        create(charge, *args, **data)
        for name in CHARGE_FIELDS:
            setattr(charge, name, None)

    trigger = Charge._trigger_payment

    def trigger_and_settle(charge, on_success=None):
        def succeeded():
            settle_destination_charge(charge)
            if on_success is not None:
                on_success()
        trigger(charge, succeeded)

    capture = Charge._capture

    def capture_noted(charge, amount, on_success=None):
        charge._captured_amount = try_convert_to_int(amount) if amount is not None else None
        capture(charge, amount, on_success)

    Charge.__init__ = init
    Charge._trigger_payment = trigger_and_settle
    Charge._capture = capture_noted


def check_refundable(data):
    """Stripe refuses to refund more than is left of a charge (localstripe does not)."""
    charge = None
    if type(data.get("payment_intent")) is str:
        intent = store.get("payment_intent:" + data["payment_intent"])
        charge = getattr(intent, "latest_charge", None)
    elif type(data.get("charge")) is str:
        charge = store.get("charge:" + data["charge"])
    if charge is None or charge.status != "succeeded":
        return  # localstripe answers these itself
    left = charge.amount - charge.amount_refunded
    amount = try_convert_to_int(data.get("amount"))
    if left <= 0:
        raise UserError(400, f"Charge {charge.id} has already been refunded.",
                        {"code": "charge_already_refunded"})
    if type(amount) is int and amount > left:
        raise UserError(400, f"Refund amount ({amount}) is greater than unrefunded amount on "
                             f"charge ({left})", {"param": "amount"})


def patch_refunds():
    create = Refund.__init__

    def init(refund, reverse_transfer=None, refund_application_fee=None, **data):
        reverse = flag({"reverse_transfer": reverse_transfer}, "reverse_transfer")
        fee_back = flag({"refund_application_fee": refund_application_fee},
                        "refund_application_fee")
        check_refundable(data)
        create(refund, **data)
        refund.transfer_reversal = None
        refund.source_transfer_reversal = None
        settle_refund(refund, reverse, fee_back)

    Refund.__init__ = init


def patch_balance_transactions():
    """Every charge and refund localstripe settles makes a BalanceTransaction: the platform's
    balance follows them."""
    create = BalanceTransaction.__init__

    def init(transaction, *args, **data):
        create(transaction, *args, **data)
        credit(None, transaction.currency, transaction.amount)

    BalanceTransaction.__init__ = init


# Accounts, account links, login links and the pages a browser opens

ACCOUNT_PARAMS = {"business_type", "capabilities", "country", "default_currency", "email",
                  "metadata", "type"}
ACCOUNT_UNMODELLED = {"account_token", "bank_account", "business_profile", "company", "controller",
                      "documents", "external_account", "groups", "individual", "settings",
                      "tos_acceptance"}


def requested_capabilities(value):
    if value is None:
        return []
    if type(value) is not dict:
        raise ParamError("Invalid object", "capabilities")
    names = []
    for name, ask in value.items():
        param = f"capabilities[{name}]"
        if name not in CAPABILITIES:
            raise unknown(param)
        if type(ask) is not dict:
            raise ParamError("Invalid object", param)
        for key in ask:
            if key != "requested":
                raise unknown(f"{param}[{key}]")
        if flag(ask, "requested", f"{param}[requested]"):
            names.append(name)
    return names


async def create_account(request):
    data = await form(request)
    expand = data.pop("expand", None)
    check_params(data, ACCOUNT_PARAMS, ACCOUNT_UNMODELLED)
    kind = enum(data, "type", ACCOUNT_TYPES, required=True)
    country = (text(data, "country") or "US").upper()
    if country not in COUNTRY_CURRENCIES:
        raise ParamError(f"Country '{country}' is unknown, or not one the fake Stripe models: "
                         + ", ".join(sorted(COUNTRY_CURRENCIES)) + ".", "country")
    email = text(data, "email")
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise ParamError(f"Invalid email address: {email}", "email", "email_invalid")
    capabilities = requested_capabilities(data.get("capabilities"))
    business_type = enum(data, "business_type", BUSINESS_TYPES)
    default_currency = (text(data, "default_currency") or COUNTRY_CURRENCIES[country]).lower()
    account = Account(kind, country, email, capabilities, business_type, default_currency,
                      metadata(data))
    return json_response(export(account, expand))


def listing(request, url, items, filters=()):
    params = query(request)
    expand = params.pop("expand", None)
    limit, after = params.pop("limit", None), params.pop("starting_after", None)
    for name, value in params.items():
        if name not in filters:
            raise unknown(name)
        items = [item for item in items if getattr(item, name) == value]
    return json_response(export(object_list(url, items, limit, after), expand))


async def list_accounts(request):
    return listing(request, "/v1/accounts", stored("account"))


async def retrieve_account(request):
    account = find("account", request.match_info["id"], param="account")
    return json_response(export(account, query(request).get("expand")))


async def create_account_link(request):
    data = await form(request)
    data.pop("expand", None)
    check_params(data, {"account", "refresh_url", "return_url", "type"},
                 {"collect", "collection_options"})
    account_id = text(data, "account", required=True)
    kind = enum(data, "type", ("account_onboarding", "account_update"), required=True)
    refresh_url, return_url = url(data, "refresh_url"), url(data, "return_url")
    account = find("account", account_id, status=400, param="account")
    if kind == "account_update" and account.type != "custom":
        raise ParamError("The fake Stripe models account_update links for Custom accounts only "
                         "(Stripe refuses them for accounts with a Stripe-hosted dashboard).",
                         "type")
    token = secrets.token_urlsafe(18)
    created = now()
    state()["links"][token] = {"account": account.id, "refresh_url": refresh_url,
                               "return_url": return_url, "expires_at": created + LINK_LIFETIME,
                               "used": False}
    return json_response({"object": "account_link", "created": created,
                          "expires_at": created + LINK_LIFETIME,
                          "url": f"{origin(request)}/_connect/onboarding/{token}"})


def difference(old, new):
    """Stripe's previous_attributes: the former values of what changed, nested objects by key."""
    changed = {}
    for key, value in old.items():
        if new.get(key) == value:
            continue
        if type(value) is dict and type(new.get(key)) is dict:
            changed[key] = difference(value, new[key])
        else:
            changed[key] = value
    for key in new:
        if key not in old:
            changed[key] = None
    return changed


def complete_onboarding(account):
    before = copy.deepcopy(account._export())
    account.details_submitted = True
    account.payouts_enabled = True
    account.capabilities = {name: "active" for name in account.capabilities}
    account.charges_enabled = account.capabilities.get("card_payments") == "active"
    account.requirements = requirements([])
    if account.tos_acceptance["date"] is None:
        account.tos_acceptance = {"date": now()}
    if not account.external_accounts["data"]:
        bank = {"id": "ba_" + random_id(24), "object": "bank_account", "account": account.id,
                "bank_name": "STRIPE TEST BANK", "country": account.country,
                "currency": account.default_currency, "default_for_currency": True,
                "last4": "6789", "status": "new"}
        account.external_accounts = dict(account.external_accounts, data=[bank], total_count=1)
    changed = difference(before, account._export())
    if changed:
        event = Event("account.updated", account)
        event.account = account.id
        event.data["previous_attributes"] = changed
        schedule_webhook(event)


def redirect(location):
    return web.Response(status=302, headers={"Location": location})


def page(status, title, body):
    return web.Response(status=status, content_type="text/html", text=(
        f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
        f"</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"))


async def visit_onboarding(request):
    link = state()["links"].get(request.match_info["token"])
    if link is None:
        return page(404, "Unknown onboarding link", "<p>This link was never issued here.</p>")
    if link["used"] or now() > link["expires_at"]:
        return redirect(link["refresh_url"])
    link["used"] = True
    complete_onboarding(store["account:" + link["account"]])
    return redirect(link["return_url"])


async def create_login_link(request):
    account = find("account", request.match_info["id"], param="account")
    data = await form(request)
    data.pop("expand", None)
    check_params(data, ())
    if account.type != "express":
        raise UserError(400, f"Cannot create a login link for the account {account.id}, which "
                             "is not an Express account.")
    if not account.details_submitted:
        raise UserError(400, NOT_ONBOARDED)
    return json_response({"object": "login_link", "created": now(),
                          "url": f"{origin(request)}/_connect/dashboard/{account.id}"})


async def visit_dashboard(request):
    account = store.get("account:" + request.match_info["account"])
    if account is None:
        return page(404, "No such account", "<p>There is no such connected account here.</p>")
    lines = "".join(f"<li>{item['amount'] / 100:.2f} {item['currency'].upper()}</li>"
                    for item in balance(account.id, account.default_currency)["available"])
    return page(200, "Express dashboard", (
        f"<p>Account <code>{html.escape(account.id)}</code>"
        f" ({html.escape(account.email or 'no email')})</p>"
        f"<h2>Available balance</h2><ul>{lines}</ul>"))


async def retrieve_balance(request):
    owner = request.get("stripe_account")
    if owner is None:
        return json_response(balance(None, PLATFORM_CURRENCY))
    return json_response(balance(owner, store["account:" + owner].default_currency))


# Transfers, their reversals, application fees

TRANSFER_PARAMS = {"amount", "currency", "description", "destination", "metadata",
                   "source_transaction", "transfer_group"}


def transferred_from(charge_id):
    return sum(transfer.amount - transfer.amount_reversed for transfer in stored("transfer")
               if transfer.source_transaction == charge_id)


def check_source_charge(source, currency, amount):
    charge = find("charge", source, status=400, param="source_transaction")
    if charge.status != "succeeded" or not charge.captured:
        raise UserError(400, f"The charge {source} has not succeeded: it cannot fund a transfer.",
                        {"param": "source_transaction"})
    if charge.currency != currency:
        raise UserError(400, f"The currency of the transfer ({currency}) differs from that of "
                             f"its source_transaction {source} ({charge.currency}).",
                        {"param": "currency"})
    left = charge.amount - charge.amount_refunded - transferred_from(source)
    if amount > left:
        raise UserError(400, f"The transfer amount ({amount}) is greater than what is left of "
                             f"its source_transaction {source} ({left}).", {"param": "amount"})


async def create_transfer(request):
    data = await form(request)
    expand = data.pop("expand", None)
    check_params(data, TRANSFER_PARAMS, {"source_type"})
    amount = integer(data, "amount", minimum=1, required=True)
    money = currency(data)
    destination = text(data, "destination", required=True)
    source = text(data, "source_transaction")
    fields = {"transfer_group": text(data, "transfer_group"),
              "description": text(data, "description"), "metadata": metadata(data)}
    account = transfer_destination(destination, "destination")
    if source is not None:
        check_source_charge(source, money, amount)
    elif ledger(None).get(money, 0) < amount:
        raise UserError(400, PLATFORM_FUNDS_LOW, {"code": "balance_insufficient"})
    transfer = make_transfer(account, amount, money, source_transaction=source, **fields)
    return json_response(export(transfer, expand))


async def list_transfers(request):
    return listing(request, "/v1/transfers", stored("transfer"),
                   ("destination", "transfer_group"))


async def retrieve_transfer(request):
    transfer = find("transfer", request.match_info["id"])
    return json_response(export(transfer, query(request).get("expand")))


async def create_reversal(request):
    transfer = find("transfer", request.match_info["id"])
    data = await form(request)
    expand = data.pop("expand", None)
    check_params(data, {"amount", "metadata", "refund_application_fee"}, {"description"})
    amount = integer(data, "amount", minimum=1)
    with_fee = flag(data, "refund_application_fee")
    notes = metadata(data)
    left = transfer.amount - transfer.amount_reversed
    if left <= 0:
        raise UserError(400, f"Transfer {transfer.id} has already been fully reversed.")
    amount = left if amount is None else amount
    if amount > left:
        raise UserError(400, f"The reversal amount ({amount}) is greater than what is left of "
                             f"transfer {transfer.id} ({left}).", {"param": "amount"})
    if not transfer._of_destination_charge and \
            ledger(transfer.destination).get(transfer.currency, 0) < amount:
        raise UserError(400, f"The destination account {transfer.destination} has insufficient "
                             "funds to cover this reversal.", {"code": "balance_insufficient"})
    reversal = make_reversal(transfer, amount, metadata=notes, with_fee=with_fee)
    return json_response(export(reversal, expand))


async def list_reversals(request):
    transfer = find("transfer", request.match_info["id"])
    return listing(request, f"/v1/transfers/{transfer.id}/reversals", transfer._reversals)


async def retrieve_reversal(request):
    transfer = find("transfer", request.match_info["id"])
    reversal = find("transfer_reversal", request.match_info["reversal"])
    if reversal.transfer != transfer.id:
        raise no_such("transfer reversal", reversal.id, "id", 404)
    return json_response(export(reversal, query(request).get("expand")))


async def list_fees(request):
    return listing(request, "/v1/application_fees", stored("application_fee"), ("charge",))


async def retrieve_fee(request):
    fee = find("application_fee", request.match_info["id"])
    return json_response(export(fee, query(request).get("expand")))


async def list_fee_refunds(request):
    fee = find("application_fee", request.match_info["id"])
    return listing(request, f"/v1/application_fees/{fee.id}/refunds", fee._refunds)


# Test settings: faults and the clock

async def add_fault(request):
    data = await form(request)
    path, mode = data.get("path"), data.get("mode")
    count = try_convert_to_int(data.get("count", 1))
    method = data.get("method", "POST")
    if type(path) is not str or not path.startswith("/") or mode not in ("down", "lost_answer") \
            or type(count) is not int or count < 1 or type(method) is not str:
        raise UserError(400, "Expected path (such as /v1/transfers, or /v1/transfers/* for a "
                             "prefix), mode (down or lost_answer), count (a positive integer, 1 "
                             "unless given) and method (POST unless given, * for any)")
    CONFIG["faults"].append({"path": path, "mode": mode, "count": count,
                             "method": method.upper()})
    return json_response({"faults": CONFIG["faults"]})


async def list_faults(request):
    return json_response({"faults": CONFIG["faults"]})


async def clear_faults(request):
    CONFIG["faults"].clear()
    return json_response({"faults": []})


async def advance_clock(request):
    data = await form(request)
    seconds = try_convert_to_int(data.get("advance"))
    if type(seconds) is not int:
        raise UserError(400, "Expected advance (a number of seconds)")
    CONFIG["clock"] += seconds
    return json_response({"now": now(), "offset": CONFIG["clock"]})


async def reset_clock(request):
    CONFIG["clock"] = 0
    return json_response({"now": now(), "offset": 0})


def take_fault(request):
    for fault in CONFIG["faults"]:
        pattern = fault["path"]
        matches = request.path.startswith(pattern[:-1]) if pattern.endswith("*") \
            else request.path == pattern
        if matches and fault["method"] in (request.method, "*"):
            fault["count"] -= 1
            CONFIG["faults"] = [f for f in CONFIG["faults"] if f["count"] > 0]
            return fault["mode"]
    return None


def api_error(message, status=500):
    return json_response({"error": {"type": "api_error", "message": message}}, status=status)


# Middlewares

def pages_without_auth(auth):
    """localstripe's authentication, except for the pages a browser opens (no API key there)."""
    @web.middleware
    async def middleware(request, handler):
        if request.path.startswith("/_connect/"):
            return await handler(request)
        return await auth(request, handler)
    return middleware


@web.middleware
async def fault_middleware(request, handler):
    mode = take_fault(request)
    if mode is None:
        return await handler(request)
    if mode == "lost_answer":
        try:
            await handler(request)
        except UserError:
            pass
    return api_error("An unknown error occurred (an outage injected through /_config/faults).")


def masked(key):
    return (key[:8] + "*" * max(0, len(key) - 12) + key[-4:]) if key else ""


@web.middleware
async def connected_account_middleware(request, handler):
    """`Stripe-Account`: the account must exist; only its balance is modelled."""
    account = request.headers.get("Stripe-Account")
    if account is None or not request.path.startswith("/v1/"):
        return await handler(request)
    if store.get("account:" + account) is None:
        from localstripe.server import get_api_key
        raise UserError(403, f"The provided key '{masked(get_api_key(request))}' does not have "
                             f"access to account '{account}' (or that account does not exist). "
                             "Application access may have been revoked.",
                        {"code": "account_invalid"})
    if (request.method, request.path) != ("GET", "/v1/balance"):
        raise UserError(400, "The fake Stripe (scripts/stripe_connect.py) models only GET "
                             "/v1/balance as a connected account (Stripe-Account header), not "
                             f"{request.method} {request.path}.")
    request["stripe_account"] = account
    return await handler(request)


def idempotency_error(status, message, code=None):
    error = {"type": "idempotency_error", "message": message}
    if code is not None:
        error["code"] = code
    return json_response({"error": error}, status=status)


async def request_parameters(request):
    from localstripe.server import get_post_data, unflatten_data
    body = await get_post_data(request, remove_auth=False) or {}
    return {"body": body, "query": unflatten_data(request.query)}


def live_records():
    records = state()["idempotency"]
    for scope in [scope for scope, record in records.items()
                  if record["created"] <= now() - KEY_LIFETIME and record["answer"] is not None]:
        del records[scope]
    return records


def replay(record, request, params, key):
    if record["answer"] is None:
        return idempotency_error(409, KEY_IN_USE.format(key), "idempotency_key_in_use")
    if record["path"] != request.path:
        return idempotency_error(400, OTHER_ENDPOINT.format(request.path, record["path"], key))
    if record["params"] != params:
        return idempotency_error(400, OTHER_PARAMETERS.format(key))
    status, body, content_type = record["answer"]
    return web.Response(status=status, body=body, headers={
        "Content-Type": content_type, "Idempotency-Key": key, "Idempotent-Replayed": "true"})


def refused_before_running(error):
    """Stripe keeps no answer for a request that failed validation before its endpoint ran:
    ours (ParamError), and localstripe's own checks of its parameters."""
    if isinstance(error, ParamError):
        return True
    message = error.body["error"].get("message") or ""
    return error.code == 400 and (message in ("Bad request", "Expected charge or payment_intent")
                                  or message.startswith("Unexpected "))


async def run_endpoint(request, handler):
    """The endpoint's answer, and whether Stripe would keep it for the idempotency key."""
    try:
        return await handler(request), True
    except UserError as error:
        return error.to_response(), not refused_before_running(error)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return api_error("An unknown error occurred"), True


@web.middleware
async def idempotency_middleware(request, handler):
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or key is None or not request.path.startswith("/v1/"):
        return await handler(request)
    if not key or len(key) > 255:
        raise UserError(400, "Invalid idempotency key: it must be 1 to 255 characters long.")
    from localstripe.server import get_api_key
    scope = (get_api_key(request), request.headers.get("Stripe-Account"), key)
    params = await request_parameters(request)
    records = live_records()
    if scope in records:
        return replay(records[scope], request, params, key)
    record = records[scope] = {"path": request.path, "params": params, "created": now(),
                               "answer": None}
    try:
        response, keep = await run_endpoint(request, handler)
    except BaseException:
        records.pop(scope, None)
        raise
    if keep and isinstance(response.body, bytes):
        record["answer"] = (response.status, response.body, response.headers.get("Content-Type"))
    else:
        records.pop(scope, None)
    response.headers["Idempotency-Key"] = key
    return response


ROUTES = (
    ("POST", "/v1/accounts", create_account),
    ("GET", "/v1/accounts", list_accounts),
    ("GET", "/v1/accounts/{id}", retrieve_account),
    ("POST", "/v1/accounts/{id}/login_links", create_login_link),
    ("POST", "/v1/account_links", create_account_link),
    ("GET", "/v1/balance", retrieve_balance),
    ("POST", "/v1/transfers", create_transfer),
    ("GET", "/v1/transfers", list_transfers),
    ("GET", "/v1/transfers/{id}", retrieve_transfer),
    ("POST", "/v1/transfers/{id}/reversals", create_reversal),
    ("GET", "/v1/transfers/{id}/reversals", list_reversals),
    ("GET", "/v1/transfers/{id}/reversals/{reversal}", retrieve_reversal),
    ("GET", "/v1/application_fees", list_fees),
    ("GET", "/v1/application_fees/{id}", retrieve_fee),
    ("GET", "/v1/application_fees/{id}/refunds", list_fee_refunds),
    ("GET", "/_connect/onboarding/{token}", visit_onboarding),
    ("GET", "/_connect/dashboard/{account}", visit_dashboard),
    ("POST", "/_config/faults", add_fault),
    ("GET", "/_config/faults", list_faults),
    ("DELETE", "/_config/faults", clear_faults),
    ("POST", "/_config/clock", advance_clock),
    ("DELETE", "/_config/clock", reset_clock),
)


def install():
    """Extends localstripe's classes, then imports its server (which registers its routes as it
    is imported, hence the order) and adds the routes and middlewares above. Returns its app."""
    if "localstripe.server" in sys.modules:
        raise RuntimeError("stripe_connect.install() must run before localstripe.server is imported")
    patch_store()
    patch_balance_transactions()
    patch_charges()
    patch_payment_intents()
    patch_refunds()
    # GET /v1/balance is this module's: localstripe's answers a constant 20 EUR.
    extra_apis[:] = [api for api in extra_apis if tuple(api[:2]) != ("GET", "/v1/balance")]
    from localstripe import server
    app = server.app
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    at = app.middlewares.index(server.auth_middleware)
    app.middlewares[at] = pages_without_auth(server.auth_middleware)
    for offset, middleware in enumerate(
            (fault_middleware, connected_account_middleware, idempotency_middleware)):
        app.middlewares.insert(at + 1 + offset, middleware)
    return app
