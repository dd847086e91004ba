"""stripe_rules.py's rules, checked through a real localstripe (fake_stripe.py) on loopback.

Run with localstripe's Python: `.spin/localstripe/bin/python -m unittest test_stripe_rules`
from scripts/ (scripts/test does).
"""

import json
import unittest
import urllib.error
import urllib.parse
import urllib.request

import fake_stripe


class StripeRules(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server, cls.base = fake_stripe.spawn()

    @classmethod
    def tearDownClass(cls):
        cls.server.kill()
        cls.server.wait()

    def call(self, method, path, form=None):
        data = urllib.parse.urlencode(form or {}).encode() if method == "POST" else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"authorization": "Bearer sk_test_rules"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def card(self, number="4242424242424242"):
        status, method = self.call("POST", "/v1/payment_methods", {
            "type": "card", "card[number]": number, "card[exp_month]": "12",
            "card[exp_year]": "2034", "card[cvc]": "123"})
        self.assertEqual(status, 200, method)
        return method["id"]

    def customer(self):
        status, customer = self.call("POST", "/v1/customers", {"metadata[user_id]": "u1"})
        self.assertEqual(status, 200, customer)
        return customer["id"]

    def pay(self, method, customer=None):
        form = {"amount": "1999", "currency": "usd", "payment_method": method, "confirm": "true"}
        if customer:
            form["customer"] = customer
        return self.call("POST", "/v1/payment_intents", form)

    def test_a_setup_intent_for_a_customer_attaches_its_payment_method(self):
        customer = self.customer()
        status, setup = self.call("POST", "/v1/setup_intents", {"customer": customer, "usage": "on_session"})
        self.assertEqual(status, 200, setup)
        status, confirmed = self.call("POST", f"/v1/setup_intents/{setup['id']}/confirm", {
            "payment_method_data[type]": "card", "payment_method_data[card][number]": "4242424242424242",
            "payment_method_data[card][exp_month]": "12", "payment_method_data[card][exp_year]": "2034",
            "payment_method_data[card][cvc]": "123"})
        self.assertEqual((status, confirmed["status"]), (200, "succeeded"), confirmed)
        _, method = self.call("GET", f"/v1/payment_methods/{confirmed['payment_method']}")
        self.assertEqual(method["customer"], customer)
        # Attached, it pays as often as its customer likes.
        for _ in range(2):
            status, intent = self.pay(method["id"], customer)
            self.assertEqual((status, intent.get("status")), (200, "succeeded"), intent)

    def test_a_setup_intent_without_a_customer_attaches_nothing(self):
        _, setup = self.call("POST", "/v1/setup_intents", {"usage": "on_session"})
        _, confirmed = self.call("POST", f"/v1/setup_intents/{setup['id']}/confirm", {
            "payment_method_data[type]": "card", "payment_method_data[card][number]": "4242424242424242",
            "payment_method_data[card][exp_month]": "12", "payment_method_data[card][exp_year]": "2034",
            "payment_method_data[card][cvc]": "123"})
        _, method = self.call("GET", f"/v1/payment_methods/{confirmed['payment_method']}")
        self.assertIsNone(method["customer"])

    def test_a_payment_method_without_a_customer_is_used_once(self):
        method = self.card()
        status, first = self.pay(method)
        self.assertEqual((status, first.get("status")), (200, "succeeded"), first)
        status, second = self.pay(method)
        self.assertEqual(status, 400, second)
        self.assertIn("may not be used again", second["error"]["message"])
        self.assertEqual(second["error"]["type"], "invalid_request_error")

    def test_a_declined_first_use_burns_a_payment_method_without_a_customer(self):
        method = self.card("4000000000000341")  # attaches, then every charge is declined
        status, first = self.pay(method)
        self.assertEqual(status, 402, first)
        status, second = self.pay(method)
        self.assertEqual(status, 400, second)
        self.assertIn("may not be used again", second["error"]["message"])

    def test_an_attached_payment_method_pays_only_for_its_own_customer(self):
        owner, other = self.customer(), self.customer()
        method = self.card()
        status, attached = self.call("POST", f"/v1/payment_methods/{method}/attach", {"customer": owner})
        self.assertEqual(status, 200, attached)
        status, refused = self.pay(method, other)
        self.assertEqual(status, 400, refused)
        status, refused = self.pay(method)
        self.assertEqual(status, 400, refused)
        self.assertEqual(refused["error"]["param"], "customer")

    def test_stripe_s_test_ids_make_a_new_payment_method_each_time(self):
        for _ in range(3):
            status, intent = self.pay("pm_card_visa")
            self.assertEqual((status, intent.get("status")), (200, "succeeded"), intent)


if __name__ == "__main__":
    unittest.main()
