"""chaos_check over crafted states: a consistent app passes every check, and each kind of
inconsistency fails exactly the check that names it. Run by scripts/test
(`python3 -m unittest scripts/test_chaos_check.py`)."""

import os
import sqlite3
import tempfile
import unittest

import chaos_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOW = 1_800_000_000_000
HOUR = 3_600_000


def add_outbox_row(db, event_id, stream, sent_at_ms):
    """An outbox row for `stream`, sent at `sent_at_ms` (None: never sent)."""
    db.execute("INSERT INTO outbox (event_id, stream, envelope, created_at_ms, sent_at_ms) "
               "VALUES (?, ?, '{}', 0, ?)", (event_id, stream, sent_at_ms))


class FakeRedis:
    """Answers the group check's commands and the stream check's reads, from a table of groups
    and one of the event ids on each stream."""

    def __init__(self, groups, streams=None):
        self.groups = groups  # stream -> [(name, pending, lag)]
        self.streams = streams or {}  # stream -> [event id]

    def stream(self, name):
        return [(1, {"id": event_id}) for event_id in self.streams.get(name, [])]

    def send(self, command):
        if command[0] == "EXISTS":
            return [1 if command[1] in self.groups else 0]
        if command[:2] == ("XINFO", "GROUPS"):
            return [[[b"name", name.encode(), b"pending", pending, b"lag", lag]
                     for name, pending, lag in self.groups[command[2]]]]
        raise AssertionError(command)


def transfer(transfer_id, charge, reversed_=0, amount=950):
    return {"id": transfer_id, "amount": amount, "amount_reversed": reversed_, "destination": "acct_s",
            "source_transaction": charge}


def migrated(directory, name):
    connection = sqlite3.connect(os.path.join(directory, f"{name}.db"))
    migrations = os.path.join(ROOT, "migrations", name)
    for file in sorted(os.listdir(migrations)):
        with open(os.path.join(migrations, file)) as sql:
            connection.executescript(sql.read())
    connection.row_factory = sqlite3.Row
    return connection


class ChaosCheckTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.dbs = {name: migrated(self.dir.name, name) for name in chaos_check.DATABASES}
        t, o, p = self.dbs["tickets"], self.dbs["orders"], self.dbs["payments"]
        # A sold ticket, a ticket for sale whose order expired, and one reserved by an open order.
        for ticket_id, status, order_id, version in (("t1", "sold", "o1", 2), ("t2", "available", None, 2),
                                                     ("t3", "reserved", "o3", 1)):
            t.execute("INSERT INTO tickets (id, title, price_cents, user_id, version, order_id, status, "
                      "created_at_ms) VALUES (?, 'Show', 1000, 'seller', ?, ?, ?, 0)",
                      (ticket_id, version, order_id, status))
            o.execute("INSERT INTO tickets (id, title, price_cents, user_id, version) "
                      "VALUES (?, 'Show', 1000, 'seller', ?)", (ticket_id, version))
        for order_id, ticket_id, status, expires, version in (("o1", "t1", "complete", NOW - HOUR, 1),
                                                              ("o2", "t2", "cancelled", NOW - HOUR, 1),
                                                              ("o3", "t3", "created", NOW + HOUR, 0)):
            o.execute("INSERT INTO orders (id, user_id, ticket_id, status, price_cents, expires_at_ms, "
                      "version, created_at_ms) VALUES (?, 'buyer', ?, ?, 1000, ?, ?, 0)",
                      (order_id, ticket_id, status, expires, version))
            p.execute("INSERT INTO orders (id, user_id, status, price_cents, expires_at_ms, version) "
                      "VALUES (?, 'buyer', ?, 1000, ?, ?)", (order_id, status, expires, version))
        # o1 was paid and its seller paid out by our transfer; o2 was paid too late by a
        # destination charge, refunded with its transfer reversed.
        for payment_id, order_id, status in (("p1", "o1", "succeeded"), ("p2", "o2", "refunded")):
            p.execute("INSERT INTO payments (id, order_id, stripe_id, client_secret, amount_cents, currency, "
                      "status, created_at_ms, updated_at_ms) VALUES (?, ?, ?, 's', 1000, 'usd', ?, 0, 0)",
                      (payment_id, order_id, "pi_" + order_id[1:], status))
        p.execute("INSERT INTO payout_accounts (user_id, stripe_id, enabled, payouts_enabled, created_at_ms, "
                  "updated_at_ms) VALUES ('seller', 'acct_s', 1, 1, 0, 0)")
        for order_id, charge_type, state, transfer_id in (("o1", "platform", "transferred", "tr_1"),
                                                       ("o2", "destination", "reversed", None)):
            p.execute("INSERT INTO payouts (order_id, seller_id, charge_type, account_id, amount_cents, "
                      "fee_cents, currency, state, transfer_id, created_at_ms, updated_at_ms) "
                      "VALUES (?, 'seller', ?, 'acct_s', 1000, 50, 'usd', ?, ?, 0, 0)",
                      (order_id, charge_type, state, transfer_id))
        sent = []
        for db in (t, o, p):
            event_id = os.urandom(8).hex()
            sent.append(event_id)
            add_outbox_row(db, event_id, "events:order", sent_at_ms=1)
            db.commit()
        self.stripe = {
            "intents": [{"id": f"pi_{n}", "status": "succeeded", "metadata": {"order_id": f"o{n}"},
                         "latest_charge": f"ch_{n}"} for n in (1, 2)],
            "refunds": [{"id": "re_2", "status": "succeeded", "payment_intent": "pi_2"}],
            "transfers": [transfer("tr_1", "ch_1"), transfer("tr_2", "ch_2", reversed_=1000, amount=1000)],
        }
        self.redis = FakeRedis({"events:order": [("tickets", 0, 0), ("payments", 0, 0)]},
                               {"events:order": sent})

    def tearDown(self):
        for db in self.dbs.values():
            db.close()
        self.dir.cleanup()

    def failing(self):
        self.dbs["tickets"].commit()
        self.dbs["orders"].commit()
        self.dbs["payments"].commit()
        state = chaos_check.State(self.dbs, NOW, self.redis, self.stripe)
        return {i.name: i.violations for i in chaos_check.check(state) if i.violations}

    def test_a_consistent_app_passes_every_check(self):
        state = chaos_check.State(self.dbs, NOW, self.redis, self.stripe)
        results = chaos_check.check(state)
        self.assertEqual({i.name: i.violations for i in results if i.violations}, {})
        self.assertEqual(len(results), 11)
        self.assertTrue(all(i.checked > 0 for i in results), results)

    def test_a_ticket_held_by_two_orders(self):
        o = self.dbs["orders"]
        o.execute("DROP INDEX orders_one_live_per_listing")  # what the database would refuse
        o.execute("INSERT INTO orders (id, user_id, ticket_id, status, price_cents, expires_at_ms, version, "
                  "created_at_ms) VALUES ('o4', 'other', 't3', 'created', 1000, ?, 0, 0)", (NOW + HOUR,))
        self.dbs["payments"].execute("INSERT INTO orders (id, user_id, status, price_cents, expires_at_ms, "
                                     "version) VALUES ('o4', 'other', 'created', 1000, ?, 0)", (NOW + HOUR,))
        self.assertEqual(list(self.failing()), ["no ticket is held or sold by two orders"])

    def test_a_replica_one_version_behind(self):
        self.dbs["orders"].execute("UPDATE tickets SET version = 1 WHERE id = 't1'")
        failing = self.failing()
        self.assertEqual(list(failing), ["every replica equals its owner"])
        self.assertIn("version 1, the ticket is 2", failing["every replica equals its owner"][0])

    def test_an_outbox_row_never_sent(self):
        add_outbox_row(self.dbs["payments"], "stuck", "events:payment", sent_at_ms=None)
        failing = self.failing()
        self.assertEqual(failing, {"every event in the outboxes was delivered":
                                   ["payments: event stuck for events:payment was never sent"]})

    def test_a_sent_event_a_redis_crash_lost(self):
        add_outbox_row(self.dbs["orders"], "lost", "events:order", sent_at_ms=5)
        failing = self.failing()
        self.assertEqual(failing, {"every event in the outboxes was delivered":
                                   ["orders: event lost is marked sent but not on events:order"]})

    def test_a_sent_event_gone_with_redis_after_every_group_acknowledged_it(self):
        add_outbox_row(self.dbs["orders"], "applied", "events:order", sent_at_ms=5)
        seq = self.dbs["orders"].execute("SELECT seq FROM outbox WHERE event_id = 'applied'").fetchone()[0]
        self.dbs["orders"].execute("INSERT INTO delivery_state (key, value) VALUES ('acknowledged_seq', ?)",
                                   (str(seq),))
        self.assertEqual(self.failing(), {})

    def test_an_order_charged_twice(self):
        self.stripe["intents"].append({"id": "pi_9", "status": "succeeded", "metadata": {"order_id": "o1"}})
        failing = self.failing()
        self.assertEqual(sorted(failing), ["every complete order was paid exactly once",
                                           "every success for an order not completed was refunded"])

    def test_a_success_for_a_cancelled_order_not_refunded(self):
        self.stripe["intents"].append({"id": "pi_3", "status": "succeeded", "metadata": {"order_id": "o2"}})
        self.assertEqual(list(self.failing()), ["every success for an order not completed was refunded"])
        self.stripe["refunds"].append({"id": "re_1", "status": "succeeded", "payment_intent": "pi_3"})
        self.assertEqual(self.failing(), {})

    def test_an_unpaid_order_past_its_window(self):
        for db in (self.dbs["orders"], self.dbs["payments"]):
            db.execute("UPDATE orders SET expires_at_ms = ? WHERE id = 'o3'", (NOW - HOUR,))
        self.assertEqual(list(self.failing()), ["every unpaid order past its window is cancelled"])

    def test_a_ticket_sold_without_its_order_complete(self):
        self.dbs["tickets"].execute("UPDATE tickets SET status = 'sold' WHERE id = 't3'")
        self.assertEqual(sorted(self.failing()), ["every sold ticket has one complete order and one payment",
                                                  "every ticket's status matches its orders"])

    def test_a_sale_paid_out_twice_or_not_at_all(self):
        paid_out = "every complete order paid its seller out once (or waits for the account)"
        self.stripe["transfers"].append(transfer("tr_3", "ch_1"))
        self.assertEqual(self.failing(), {paid_out: ["complete order o1 has 2 transfers to its seller"]})
        self.stripe["transfers"] = [transfer("tr_1", "ch_1", amount=1000), self.stripe["transfers"][1]]
        self.assertEqual(self.failing(), {paid_out: ["order o1's transfer is 1000 to acct_s, not 950 to acct_s"]})
        self.stripe["transfers"] = self.stripe["transfers"][1:]
        self.dbs["payments"].execute("UPDATE payouts SET state = 'waiting_for_account' WHERE order_id = 'o1'")
        self.assertEqual(self.failing(), {paid_out: ["order o1's payout waits, but its seller's account is enabled"]})

    def test_a_refund_whose_transfer_the_seller_kept(self):
        self.stripe["transfers"][1]["amount_reversed"] = 0
        self.assertEqual(self.failing(), {"every refund's transfer was reversed":
                                          ["order o2 was refunded, transfer tr_2 was not reversed"]})

    def test_pending_entries_in_a_consumer_group(self):
        self.redis.groups["events:order"][1] = ("payments", 2, 0)
        self.assertEqual(self.failing(), {"every consumer group has nothing pending":
                                          ["events:order group payments: 2 pending"]})


if __name__ == "__main__":
    unittest.main()
