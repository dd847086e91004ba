"""stripe_connect.py's Connect, idempotency and faults, checked through a real localstripe
(fake_stripe.py) on loopback, with a webhook endpoint of the test's own that checks signatures.

Run with localstripe's Python: `.spin/localstripe/bin/python -m unittest test_stripe_connect`
from scripts/ (scripts/test does).
"""

import hashlib
import hmac
import http.client
import http.server
import json
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

import fake_stripe


KEY = "sk_test_connect"
SECRET = "whsec_connect_test"


class Hooks(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.received.append((self.headers.get("Stripe-Signature"), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class StripeConnect(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server, cls.base = fake_stripe.spawn()
        cls.hooks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
        cls.hooks.received, cls.hooks.lock = [], threading.Lock()
        threading.Thread(target=cls.hooks.serve_forever, daemon=True).start()
        hook_url = f"http://127.0.0.1:{cls.hooks.server_address[1]}/hook"
        data = urllib.parse.urlencode({"url": hook_url, "secret": SECRET}).encode()
        urllib.request.urlopen(f"{cls.base}/_config/webhooks/connect-test", data=data, timeout=5).close()

    @classmethod
    def tearDownClass(cls):
        cls.server.kill()
        cls.server.wait()
        cls.hooks.shutdown()
        cls.hooks.server_close()

    # Calls

    def request(self, method, path, form=None, headers=None, key=KEY):
        data = urllib.parse.urlencode(form or {}).encode() if method == "POST" else None
        if method != "POST" and form:
            path += "?" + urllib.parse.urlencode(form)
        all_headers = {"authorization": f"Bearer {key}", **(headers or {})}
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response), response.headers
        except urllib.error.HTTPError as error:
            return error.code, json.load(error), error.headers

    def call(self, method, path, form=None, **kwargs):
        status, body, _ = self.request(method, path, form, **kwargs)
        return status, body

    def ok(self, method, path, form=None, **kwargs):
        status, body = self.call(method, path, form, **kwargs)
        self.assertEqual(status, 200, body)
        return body

    def visit(self, url):
        """A browser's GET, no API key, redirects not followed: (status, Location, body)."""
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            connection.request("GET", parts.path)
            response = connection.getresponse()
            return response.status, response.getheader("Location"), response.read().decode()
        finally:
            connection.close()

    def assert_error(self, answer, status, param=None, code=None, kind="invalid_request_error"):
        got_status, body = answer
        self.assertEqual(got_status, status, body)
        self.assertEqual(body["error"]["type"], kind, body)
        self.assertTrue(body["error"]["message"], body)
        if param is not None:
            self.assertEqual(body["error"].get("param"), param, body)
        if code is not None:
            self.assertEqual(body["error"].get("code"), code, body)
        return body["error"]

    # Fixtures

    def account(self, onboarded=True, **extra):
        account = self.ok("POST", "/v1/accounts", {
            "type": "express", "country": "US", "email": "seller@example.com",
            "capabilities[transfers][requested]": "true",
            "capabilities[card_payments][requested]": "true", "metadata[user_id]": "u42", **extra})
        if onboarded:
            status, location, _ = self.visit(self.link(account["id"])["url"])
            self.assertEqual((status, location), (302, "https://shop.example/connect/done"))
        return account["id"]

    def link(self, account):
        return self.ok("POST", "/v1/account_links", {
            "account": account, "type": "account_onboarding",
            "return_url": "https://shop.example/connect/done",
            "refresh_url": "https://shop.example/connect/again"})

    def pay(self, amount, destination=None, fee=None):
        form = {"amount": str(amount), "currency": "usd", "payment_method": "pm_card_visa",
                "confirm": "true"}
        if destination:
            form["transfer_data[destination]"] = destination
        if fee is not None:
            form["application_fee_amount"] = str(fee)
        intent = self.ok("POST", "/v1/payment_intents", form)
        self.assertEqual(intent["status"], "succeeded", intent)
        return intent

    def balance(self, account=None):
        headers = {"Stripe-Account": account} if account else None
        body = self.ok("GET", "/v1/balance", headers=headers)
        self.assertEqual(body["object"], "balance")
        return {item["currency"]: item["amount"] for item in body["available"]}.get("usd", 0)

    def fund(self, amount):
        """Makes the platform's available balance (shared by every test) at least `amount`."""
        short = amount - self.balance()
        if short > 0:
            self.pay(short)

    def transfer(self, destination, amount, key=None, **extra):
        headers = {"Idempotency-Key": key} if key else None
        return self.request("POST", "/v1/transfers", {
            "amount": str(amount), "currency": "usd", "destination": destination, **extra},
            headers=headers)

    def transfers_to(self, destination):
        return self.ok("GET", "/v1/transfers", {"destination": destination})["data"]

    def event(self, kind, about, timeout=10):
        """The first event of `kind` whose data.object has id `about`, its signature checked."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.hooks.lock:
                received = list(self.hooks.received)
            for signature, body in received:
                event = json.loads(body)
                if event["type"] == kind and event["data"]["object"]["id"] == about:
                    fields = dict(part.split("=", 1) for part in signature.split(","))
                    expected = hmac.new(SECRET.encode(), fields["t"].encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
                    self.assertTrue(hmac.compare_digest(fields["v1"], expected), signature)
                    return event
            time.sleep(0.1)
        self.fail(f"no {kind} event for {about}")

    # Accounts and onboarding

    def test_an_express_account_starts_restricted(self):
        account = self.ok("GET", f"/v1/accounts/{self.account(onboarded=False)}")
        self.assertTrue(account["id"].startswith("acct_"))
        self.assertEqual((account["object"], account["type"], account["country"]), ("account", "express", "US"))
        self.assertEqual((account["email"], account["default_currency"]), ("seller@example.com", "usd"))
        self.assertEqual((account["charges_enabled"], account["payouts_enabled"], account["details_submitted"]),
                         (False, False, False))
        self.assertEqual(account["capabilities"], {"transfers": "inactive", "card_payments": "inactive"})
        self.assertEqual(account["metadata"], {"user_id": "u42"})
        due = account["requirements"]
        for field in ("external_account", "individual.dob.day", "tos_acceptance.date"):
            self.assertIn(field, due["currently_due"])
        self.assertEqual(due["eventually_due"], due["currently_due"])
        self.assertEqual((due["pending_verification"], due["disabled_reason"], due["current_deadline"]),
                         ([], "requirements.past_due", None))
        listed = self.ok("GET", "/v1/accounts", {"limit": "100"})
        self.assertEqual(listed["object"], "list")
        self.assertIn(account["id"], [item["id"] for item in listed["data"]])

    def test_accounts_are_refused_as_stripe_refuses_them(self):
        self.assert_error(self.call("POST", "/v1/accounts", {"type": "premium"}), 400, "type")
        self.assert_error(self.call("POST", "/v1/accounts", {"country": "US"}), 400, "type", "parameter_missing")
        self.assert_error(self.call("POST", "/v1/accounts", {
            "type": "express", "capabilities[teleport][requested]": "true"}), 400, "capabilities[teleport]")
        self.assert_error(self.call("POST", "/v1/accounts", {"type": "express", "colour": "red"}),
                          400, "colour", "parameter_unknown")
        self.assert_error(self.call("GET", "/v1/accounts/acct_nothere"), 404, "account", "resource_missing")

    def test_an_account_link_onboards_once_and_sends_account_updated(self):
        account = self.account(onboarded=False)
        link = self.link(account)
        self.assertEqual(link["object"], "account_link")
        self.assertEqual(link["expires_at"], link["created"] + 300)
        self.assertTrue(link["url"].startswith(self.base + "/_connect/onboarding/"), link)
        self.assertEqual(self.visit(link["url"])[:2], (302, "https://shop.example/connect/done"))
        done = self.ok("GET", f"/v1/accounts/{account}")
        self.assertEqual((done["charges_enabled"], done["payouts_enabled"], done["details_submitted"]),
                         (True, True, True))
        self.assertEqual(done["capabilities"], {"transfers": "active", "card_payments": "active"})
        self.assertEqual((done["requirements"]["currently_due"], done["requirements"]["past_due"],
                          done["requirements"]["disabled_reason"]), ([], [], None))
        event = self.event("account.updated", account)
        self.assertEqual(event["account"], account)
        self.assertEqual(event["data"]["object"]["charges_enabled"], True)
        previous = event["data"]["previous_attributes"]
        self.assertEqual((previous["charges_enabled"], previous["details_submitted"]), (False, False))
        self.assertEqual(previous["capabilities"], {"transfers": "inactive", "card_payments": "inactive"})
        self.assertIn("external_account", previous["requirements"]["currently_due"])
        # Single use: a second visit goes to refresh_url and changes nothing.
        self.assertEqual(self.visit(link["url"])[:2], (302, "https://shop.example/connect/again"))

    def test_an_expired_account_link_sends_back_to_refresh_url(self):
        account = self.account(onboarded=False)
        link = self.link(account)
        self.addCleanup(self.call, "DELETE", "/_config/clock")
        self.ok("POST", "/_config/clock", {"advance": "301"})
        self.assertEqual(self.visit(link["url"])[:2], (302, "https://shop.example/connect/again"))
        self.assertFalse(self.ok("GET", f"/v1/accounts/{account}")["details_submitted"])
        self.assertEqual(self.visit(self.base + "/_connect/onboarding/forged")[0], 404)

    def test_account_links_need_an_account_and_urls(self):
        account = self.account(onboarded=False)
        good = {"account": account, "type": "account_onboarding",
                "return_url": "https://shop.example/r", "refresh_url": "https://shop.example/f"}
        for param in good:
            form = {name: value for name, value in good.items() if name != param}
            self.assert_error(self.call("POST", "/v1/account_links", form), 400, param, "parameter_missing")
        self.assert_error(self.call("POST", "/v1/account_links", {**good, "return_url": "not a url"}),
                          400, "return_url", "url_invalid")
        self.assert_error(self.call("POST", "/v1/account_links", {**good, "account": "acct_nothere"}),
                          400, "account", "resource_missing")

    def test_login_links_only_after_onboarding(self):
        account = self.account(onboarded=False)
        error = self.assert_error(self.call("POST", f"/v1/accounts/{account}/login_links"), 400)
        self.assertEqual(error["message"], "Cannot create a login link for an account that has not completed onboarding.")
        self.visit(self.link(account)["url"])
        login = self.ok("POST", f"/v1/accounts/{account}/login_links")
        self.assertEqual(login["object"], "login_link")
        self.assertEqual(login["url"], f"{self.base}/_connect/dashboard/{account}")
        self.pay(1999, account, 99)
        status, _, page = self.visit(login["url"])
        self.assertEqual(status, 200)
        self.assertIn(account, page)
        self.assertIn("19.00 USD", page)

    # Destination charges and refunds

    def test_a_destination_charge_transfers_to_the_seller_and_keeps_the_fee(self):
        account = self.account()
        platform = self.balance()
        intent = self.pay(1999, account, 99)
        self.assertEqual(intent["transfer_data"], {"destination": account, "amount": None})
        self.assertEqual(intent["application_fee_amount"], 99)
        fetched = self.ok("GET", f"/v1/payment_intents/{intent['id']}", {"expand[0]": "latest_charge"})
        self.assertEqual((fetched["transfer_data"]["destination"], fetched["application_fee_amount"]), (account, 99))
        charge = fetched["latest_charge"]
        self.assertEqual((charge["destination"], charge["application_fee_amount"]), (account, 99))
        self.assertEqual(charge["transfer_data"]["destination"], account)
        self.assertTrue(charge["application_fee"].startswith("fee_"), charge)
        transfer = self.ok("GET", f"/v1/transfers/{charge['transfer']}")
        # Stripe transfers the whole charge, then takes the fee back from the account.
        self.assertEqual((transfer["amount"], transfer["destination"], transfer["source_transaction"]),
                         (1999, account, charge["id"]))
        fee = self.ok("GET", f"/v1/application_fees/{charge['application_fee']}")
        self.assertEqual((fee["amount"], fee["account"], fee["originating_transaction"], fee["refunded"]),
                         (99, account, charge["id"], False))
        self.assertEqual(self.balance(account), 1900)
        self.assertEqual(self.balance() - platform, 99)
        self.assertEqual(self.event("transfer.created", transfer["id"])["data"]["object"]["amount"], 1999)
        self.assertNotIn("account", self.event("transfer.created", transfer["id"]))

    def test_payment_intents_refuse_bad_destinations_and_fees(self):
        base = {"amount": "1000", "currency": "usd"}
        self.assert_error(self.call("POST", "/v1/payment_intents", {**base, "transfer_data[destination]": "acct_nothere"}),
                          400, "transfer_data[destination]", "resource_missing")
        restricted = self.account(onboarded=False)
        self.assert_error(self.call("POST", "/v1/payment_intents", {**base, "transfer_data[destination]": restricted}),
                          400, "transfer_data[destination]", "insufficient_capabilities_for_transfer")
        account = self.account()
        for fee in ("1001", "-1", "lots"):
            self.assert_error(self.call("POST", "/v1/payment_intents", {
                **base, "transfer_data[destination]": account, "application_fee_amount": fee}),
                400, "application_fee_amount")
        self.assert_error(self.call("POST", "/v1/payment_intents", {**base, "application_fee_amount": "10"}),
                          400, "application_fee_amount")
        plain = self.ok("POST", "/v1/payment_intents", base)
        self.assertEqual((plain["transfer_data"], plain["application_fee_amount"]), (None, None))

    def test_a_refund_with_reverse_transfer_and_refund_application_fee_undoes_it_all(self):
        account = self.account()
        platform = self.balance()
        intent = self.pay(1999, account, 99)
        refund = self.ok("POST", "/v1/refunds", {"payment_intent": intent["id"], "reverse_transfer": "true",
                                                 "refund_application_fee": "true"})
        self.assertEqual(refund["amount"], 1999)
        self.assertTrue(refund["transfer_reversal"].startswith("trr_"), refund)
        charge = intent["latest_charge"]
        transfer = self.ok("GET", f"/v1/transfers/{charge['transfer']}")
        self.assertEqual((transfer["reversed"], transfer["amount_reversed"]), (True, 1999))
        self.assertEqual(transfer["reversals"]["data"][0]["id"], refund["transfer_reversal"])
        self.assertEqual(transfer["reversals"]["data"][0]["source_refund"], refund["id"])
        fee = self.ok("GET", f"/v1/application_fees/{charge['application_fee']}")
        self.assertEqual((fee["refunded"], fee["amount_refunded"]), (True, 99))
        self.assertEqual((self.balance(account), self.balance() - platform), (0, 0))
        reversed_event = self.event("transfer.reversed", transfer["id"])
        self.assertEqual(reversed_event["data"]["object"]["amount_reversed"], 1999)

    def test_partial_refunds_reverse_in_proportion_and_the_last_one_exactly(self):
        account = self.account()
        platform = self.balance()
        intent = self.pay(1999, account, 99)
        flags = {"payment_intent": intent["id"], "reverse_transfer": "true", "refund_application_fee": "true"}
        self.ok("POST", "/v1/refunds", {**flags, "amount": "1000"})
        charge = intent["latest_charge"]
        self.assertEqual(self.ok("GET", f"/v1/transfers/{charge['transfer']}")["amount_reversed"], 1000)
        self.assertEqual(self.ok("GET", f"/v1/application_fees/{charge['application_fee']}")["amount_refunded"], 50)
        self.assertEqual(self.balance(account), 1900 - 1000 + 50)
        self.ok("POST", "/v1/refunds", {**flags, "amount": "999"})
        self.assertEqual(self.ok("GET", f"/v1/application_fees/{charge['application_fee']}")["amount_refunded"], 99)
        self.assertEqual((self.balance(account), self.balance() - platform), (0, 0))

    def test_a_refund_without_the_flags_leaves_the_transfer_alone(self):
        account = self.account()
        platform = self.balance()
        intent = self.pay(1999, account, 99)
        refund = self.ok("POST", "/v1/refunds", {"payment_intent": intent["id"]})
        self.assertIsNone(refund["transfer_reversal"])
        transfer = self.ok("GET", f"/v1/transfers/{intent['latest_charge']['transfer']}")
        self.assertEqual((transfer["reversed"], transfer["amount_reversed"]), (False, 0))
        self.assertEqual((self.balance(account), self.balance() - platform), (1900, 99 - 1999))

    def test_a_charge_is_refunded_once_and_flags_on_a_plain_charge_are_ignored(self):
        intent = self.pay(1500)
        refund = self.ok("POST", "/v1/refunds", {"payment_intent": intent["id"], "reverse_transfer": "true",
                                                 "refund_application_fee": "true"})
        self.assertIsNone(refund["transfer_reversal"])
        self.assert_error(self.call("POST", "/v1/refunds", {"payment_intent": intent["id"]}),
                          400, code="charge_already_refunded")

    def every(self, path, **filters):
        """Every object a list endpoint holds, following `has_more` as Stripe's clients do."""
        found, after = [], None
        while True:
            page = self.ok("GET", path, {"limit": "100", **filters,
                                         **({"starting_after": after} if after else {})})
            found += page["data"]
            if not page["has_more"]:
                return found
            after = page["data"][-1]["id"]

    def test_lists_hold_every_object_of_their_kind_and_no_other(self):
        # The lists read an index by kind (patch_store), which must follow the store through
        # every write and delete.
        intents = [self.pay(700 + n)["id"] for n in range(3)]
        refunded = self.pay(900)
        refund = self.ok("POST", "/v1/refunds", {"payment_intent": refunded["id"]})
        customer = self.ok("POST", "/v1/customers", {"email": "listed@example.com"})["id"]
        listed = {intent["id"]: intent for intent in self.every("/v1/payment_intents")}
        self.assertTrue(set(intents + [refunded["id"]]) <= set(listed), listed.keys())
        self.assertTrue(all(intent["object"] == "payment_intent" for intent in listed.values()))
        charge = listed[refunded["id"]]["latest_charge"]  # localstripe expands it
        self.assertEqual((charge["id"], charge["amount_refunded"], charge["refunded"]),
                         (refund["charge"], 900, True))
        self.assertEqual([r["id"] for r in self.every("/v1/refunds", charge=refund["charge"])], [refund["id"]])
        self.assertIn(customer, [c["id"] for c in self.every("/v1/customers")])
        self.ok("DELETE", f"/v1/customers/{customer}")
        self.assertNotIn(customer, [c["id"] for c in self.every("/v1/customers")])

    # Transfers and reversals

    def test_a_transfer_from_a_charge_is_bounded_by_it(self):
        account = self.account()
        charge = self.pay(5000)["latest_charge"]["id"]
        status, first, _ = self.transfer(account, 3000, source_transaction=charge, transfer_group="order-7")
        self.assertEqual(status, 200, first)
        self.assertEqual((first["object"], first["amount"], first["amount_reversed"], first["reversed"]),
                         ("transfer", 3000, 0, False))
        self.assertEqual((first["source_transaction"], first["transfer_group"], first["livemode"]),
                         (charge, "order-7", False))
        self.assertEqual(first["reversals"], {"object": "list", "data": [], "has_more": False, "total_count": 0,
                                              "url": f"/v1/transfers/{first['id']}/reversals"})
        status, body, _ = self.transfer(account, 2001, source_transaction=charge)
        self.assert_error((status, body), 400, "amount")
        status, body, _ = self.transfer(account, 2000, source_transaction=charge)
        self.assertEqual(status, 200, body)
        status, body, _ = self.transfer(account, 10, source_transaction="ch_nothere")
        self.assert_error((status, body), 400, "source_transaction", "resource_missing")
        self.assertEqual(self.balance(account), 5000)

    def test_transfers_are_refused_as_stripe_refuses_them(self):
        account = self.account()
        full = {"amount": "100", "currency": "usd", "destination": account}
        for param in ("amount", "currency", "destination"):
            form = {name: value for name, value in full.items() if name != param}
            self.assert_error(self.call("POST", "/v1/transfers", form), 400, param, "parameter_missing")
        self.assert_error(self.call("POST", "/v1/transfers", {**full, "amount": "0"}), 400, "amount")
        self.assert_error(self.call("POST", "/v1/transfers", {**full, "destination": "acct_nothere"}),
                          400, "destination", "resource_missing")
        restricted = self.account(onboarded=False)
        self.assert_error(self.call("POST", "/v1/transfers", {**full, "destination": restricted}),
                          400, "destination", "insufficient_capabilities_for_transfer")
        self.assert_error(self.call("POST", "/v1/transfers", {**full, "amount": str(10 ** 12)}),
                          400, code="balance_insufficient")
        self.assert_error(self.call("GET", "/v1/transfers/tr_nothere"), 404, code="resource_missing")
        self.assertEqual(self.transfers_to(account), [])

    def test_a_transfer_is_reversed_in_parts_then_in_full(self):
        account = self.account()
        self.fund(3000)
        platform = self.balance()
        status, transfer, _ = self.transfer(account, 1200)
        self.assertEqual(status, 200, transfer)
        self.assertEqual((self.balance(account), self.balance() - platform), (1200, -1200))
        path = f"/v1/transfers/{transfer['id']}/reversals"
        part = self.ok("POST", path, {"amount": "500", "metadata[reason]": "fraud"})
        self.assertEqual((part["object"], part["amount"], part["currency"], part["transfer"], part["metadata"]),
                         ("transfer_reversal", 500, "usd", transfer["id"], {"reason": "fraud"}))
        self.assertTrue(part["id"].startswith("trr_"))
        self.assert_error(self.call("POST", path, {"amount": "701"}), 400, "amount")
        rest = self.ok("POST", path)
        self.assertEqual(rest["amount"], 700)
        after = self.ok("GET", f"/v1/transfers/{transfer['id']}")
        self.assertEqual((after["amount_reversed"], after["reversed"], after["reversals"]["total_count"]), (1200, True, 2))
        listed = self.ok("GET", path)["data"]
        self.assertEqual([item["id"] for item in listed], [rest["id"], part["id"]])
        self.assertEqual(self.ok("GET", f"{path}/{part['id']}")["amount"], 500)
        self.assert_error(self.call("POST", path), 400)
        self.assertEqual((self.balance(account), self.balance() - platform), (0, 0))
        self.assertEqual(self.event("transfer.reversed", transfer["id"])["type"], "transfer.reversed")

    def test_transfers_are_listed_by_destination_and_group(self):
        first, second = self.account(), self.account()
        self.fund(1000)
        ids = [self.transfer(first, 100, transfer_group="g-a")[1]["id"],
               self.transfer(first, 200, transfer_group="g-b")[1]["id"],
               self.transfer(second, 300, transfer_group="g-a")[1]["id"]]
        self.assertEqual([t["id"] for t in self.transfers_to(first)], [ids[1], ids[0]])
        grouped = self.ok("GET", "/v1/transfers", {"destination": first, "transfer_group": "g-a"})["data"]
        self.assertEqual([t["id"] for t in grouped], [ids[0]])
        self.assert_error(self.call("GET", "/v1/transfers", {"colour": "red"}), 400, "colour")

    # Idempotency

    def test_an_idempotent_transfer_is_made_once(self):
        account = self.account()
        self.fund(1000)
        key = str(uuid.uuid4())
        status, first, headers = self.transfer(account, 400, key)
        self.assertEqual(status, 200, first)
        self.assertIsNone(headers.get("Idempotent-Replayed"))
        status, again, headers = self.transfer(account, 400, key)
        self.assertEqual((status, again), (200, first))
        self.assertEqual(headers.get("Idempotent-Replayed"), "true")
        self.assertEqual(len(self.transfers_to(account)), 1)
        self.assertEqual(self.balance(account), 400)

    def test_an_idempotency_key_with_other_parameters_or_path_is_refused(self):
        account = self.account()
        self.fund(1000)
        key = str(uuid.uuid4())
        self.assertEqual(self.transfer(account, 400, key)[0], 200)
        other = self.assert_error(self.transfer(account, 401, key)[:2], 400, kind="idempotency_error")
        self.assertTrue(other["message"].startswith("Keys for idempotent requests can only be used with the "
                                                    "same parameters they were first used with."), other)
        elsewhere = self.request("POST", "/v1/customers", {"amount": "400"}, headers={"Idempotency-Key": key})
        self.assert_error(elsewhere[:2], 400, kind="idempotency_error")
        self.assertEqual(len(self.transfers_to(account)), 1)

    def test_idempotency_keys_are_scoped_by_api_key_and_cover_localstripe_s_own_resources(self):
        key = {"Idempotency-Key": str(uuid.uuid4())}
        first = self.request("POST", "/v1/customers", {"email": "a@example.com"}, headers=key)
        again = self.request("POST", "/v1/customers", {"email": "a@example.com"}, headers=key)
        self.assertEqual(first[1]["id"], again[1]["id"])
        self.assertEqual(again[2].get("Idempotent-Replayed"), "true")
        other = self.request("POST", "/v1/customers", {"email": "a@example.com"}, headers=key, key="sk_test_other")
        self.assertNotEqual(other[1]["id"], first[1]["id"])

    def test_a_request_refused_for_its_parameters_keeps_no_answer_but_a_refusal_that_ran_does(self):
        account = self.account()
        self.fund(1000)
        key = str(uuid.uuid4())
        missing = self.request("POST", "/v1/transfers", {"currency": "usd", "destination": account},
                               headers={"Idempotency-Key": key})
        self.assert_error(missing[:2], 400, "amount")
        status, made, _ = self.transfer(account, 100, key)  # the same key runs, now with an amount
        self.assertEqual(status, 200, made)
        gone = str(uuid.uuid4())
        first = self.transfer("acct_nothere", 100, gone)
        self.assert_error(first[:2], 400, "destination", "resource_missing")
        again = self.transfer("acct_nothere", 100, gone)
        self.assertEqual((again[0], again[1], again[2].get("Idempotent-Replayed")), (400, first[1], "true"))

    def test_idempotency_keys_expire_after_a_day(self):
        account = self.account()
        self.fund(1000)
        key = str(uuid.uuid4())
        self.assertEqual(self.transfer(account, 100, key)[0], 200)
        self.addCleanup(self.call, "DELETE", "/_config/clock")
        self.ok("POST", "/_config/clock", {"advance": str(24 * 3600 + 1)})
        status, body, headers = self.transfer(account, 150, key)
        self.assertEqual(status, 200, body)
        self.assertIsNone(headers.get("Idempotent-Replayed"))
        self.assertEqual(sorted(t["amount"] for t in self.transfers_to(account)), [100, 150])

    # Faults and the Stripe-Account header

    def test_an_outage_runs_nothing_and_keeps_no_key(self):
        account = self.account()
        self.fund(1000)
        self.addCleanup(self.call, "DELETE", "/_config/faults")
        self.ok("POST", "/_config/faults", {"path": "/v1/transfers", "mode": "down", "count": "1"})
        key = str(uuid.uuid4())
        self.assert_error(self.transfer(account, 300, key)[:2], 500, kind="api_error")
        self.assertEqual(self.transfers_to(account), [])
        status, made, headers = self.transfer(account, 300, key)
        self.assertEqual(status, 200, made)
        self.assertIsNone(headers.get("Idempotent-Replayed"))
        self.assertEqual([t["id"] for t in self.transfers_to(account)], [made["id"]])

    def test_a_lost_answer_is_made_once_and_replayed_to_the_retry(self):
        account = self.account()
        self.fund(1000)
        self.addCleanup(self.call, "DELETE", "/_config/faults")
        self.ok("POST", "/_config/faults", {"path": "/v1/transfers", "mode": "lost_answer", "count": "1"})
        key = str(uuid.uuid4())
        self.assert_error(self.transfer(account, 300, key)[:2], 500, kind="api_error")
        made = self.transfers_to(account)
        self.assertEqual(len(made), 1)
        status, retried, headers = self.transfer(account, 300, key)
        self.assertEqual((status, retried["id"], headers.get("Idempotent-Replayed")), (200, made[0]["id"], "true"))
        self.assertEqual(len(self.transfers_to(account)), 1)
        self.assertEqual(self.balance(account), 300)

    def test_faults_are_counted_and_cleared(self):
        self.addCleanup(self.call, "DELETE", "/_config/faults")
        self.ok("POST", "/_config/faults", {"path": "/v1/customers", "mode": "down", "count": "2"})
        self.assertEqual(self.call("POST", "/v1/customers")[0], 500)
        self.assertEqual(self.ok("GET", "/_config/faults")["faults"][0]["count"], 1)
        self.assertEqual(self.call("GET", "/v1/customers")[0], 200)  # POST only, unless told
        self.ok("DELETE", "/_config/faults")
        self.assertEqual(self.call("POST", "/v1/customers")[0], 200)
        self.assert_error(self.call("POST", "/_config/faults", {"path": "/v1/x", "mode": "slow"}), 400)

    def test_the_stripe_account_header_names_a_known_account_and_reads_its_balance_only(self):
        self.assert_error(self.call("GET", "/v1/balance", headers={"Stripe-Account": "acct_nothere"}),
                          403, code="account_invalid")
        account = self.account()
        self.assertEqual(self.balance(account), 0)
        self.assert_error(self.call("GET", "/v1/customers", headers={"Stripe-Account": account}), 400)


if __name__ == "__main__":
    unittest.main()
