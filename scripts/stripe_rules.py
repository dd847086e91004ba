"""Rules of Stripe's API that localstripe 1.15.10 does not enforce, added to it for the tests
and for `scripts/up` (fake_stripe.py installs them before serving).

- A SetupIntent created for a Customer attaches its PaymentMethod to that Customer once it
  succeeds, as Stripe does.
- A PaymentMethod attached to no Customer can be used by one PaymentIntent confirmation only;
  a second use is refused with a 400, as Stripe refuses it. Stripe's special test ids
  (`pm_card_visa`, ...) make a new PaymentMethod on every use, so they are not affected.
- A PaymentMethod attached to a Customer can only pay a PaymentIntent of that same Customer.

Each rule is a wrapper around one localstripe method; test_stripe_rules.py checks each one
through localstripe's own HTTP API.
"""

from localstripe.errors import UserError
from localstripe.resources import PaymentIntent, PaymentMethod, SetupIntent

USED_WITHOUT_CUSTOMER = (
    "The provided PaymentMethod was previously used with a PaymentIntent without Customer "
    "attachment. It may not be used again: attach it to a Customer to use it more than once.")
OTHER_CUSTOMER = "The provided PaymentMethod belongs to another Customer than this PaymentIntent's."
NEEDS_CUSTOMER = ("The provided PaymentMethod is attached to a Customer: pass that Customer with "
                  "the PaymentIntent to use it.")


def install():
    confirm = PaymentIntent._confirm

    def confirm_under_the_rules(intent, on_failure_now):
        method = PaymentMethod._api_retrieve(intent.payment_method)
        if method.customer is None:
            if getattr(method, "_used_without_customer", False):
                raise UserError(400, USED_WITHOUT_CUSTOMER, {"param": "payment_method"})
            method._used_without_customer = True
        elif intent.customer is None:
            raise UserError(400, NEEDS_CUSTOMER, {"param": "customer"})
        elif intent.customer != method.customer:
            raise UserError(400, OTHER_CUSTOMER, {"param": "payment_method"})
        return confirm(intent, on_failure_now)

    PaymentIntent._confirm = confirm_under_the_rules

    attach = SetupIntent._attach_pm

    def attach_to_the_customer(setup, method):
        attach(setup, method)
        if setup.status == "succeeded" and setup.customer is not None:
            method.customer = setup.customer

    SetupIntent._attach_pm = attach_to_the_customer
