import json

from freezegun import freeze_time
from psycopg2 import IntegrityError

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from .common import PaymentDunningCase

# what a client could send, hoping to reach the addon's internal paths
FORGED_CONTEXT = {"payment_order_creating": True, "payment_order_edit": True, "tracking_disable": True}


@tagged("post_install", "-at_install")
class TestOrderIntegrity(PaymentDunningCase):
    """An order changes only through its own paths, whatever a Collections User sends."""

    def as_user(self, order, user=None):
        return order.with_user(user or self.user).with_context(**FORGED_CONTEXT)

    def test_forged_context_does_not_unlock_an_order(self):
        order = self.create_order(100.0, concept="November")
        for vals in (
            {"partner_id": self.customer_2.id},
            {"due_date": "2027-01-01"},
            {"concept": "December"},
            {"line_ids": [Command.create({"name": "Extra", "amount": 5.0})]},
            {"company_id": self.company_2.id},
        ):
            with self.subTest(vals=vals), self.assertRaises(UserError):
                self.as_user(order).write(vals)
        with self.assertRaisesRegex(UserError, "Cancel it and create a new order"):
            self.as_user(order).line_ids.write({"amount": 1.0})
        with self.assertRaisesRegex(UserError, "Cancel it and create a new order"):
            self.env["payment.order.line"].with_user(self.user).with_context(**FORGED_CONTEXT).create(
                {"order_id": order.id, "name": "x", "amount": 1.0}
            )
        self.assertEqual((order.amount, order.concept, order.company_id), (100.0, "November", self.company))

    def test_user_cannot_write_what_only_the_workflow_changes(self):
        order = self.create_order(100.0)
        for vals in (
            {"balance": 1.0},
            {"balance": 500.0},
            {"charges_amount": 30.0},
            {"state": "paid"},
            {"state": "overdue"},
            {"name": "OP/FAKE/1"},
            {"paid_date": "2026-11-01"},
        ):
            with self.subTest(vals=vals), self.assertRaisesRegex(UserError, "change only through its own actions"):
                self.as_user(order).write(vals)
        self.assertRecordValues(order, [{"balance": 100.0, "state": "pending", "charges_amount": 0.0}])
        self.assertFalse(order.paid_date)
        order.action_pay()
        with self.assertRaisesRegex(UserError, "change only through its own actions"):
            self.as_user(order).write({"charges_amount": 10.0})
        with self.assertRaisesRegex(UserError, "change only through its own actions"):
            self.as_user(order).write({"balance": 20.0})

    def test_counters_are_not_writable(self):
        order = self.create_order(100.0)
        # a computed count without inverse: the write changes nothing the user can see
        self.as_user(order).write({"notification_count": 7})
        order.invalidate_recordset()
        self.assertEqual(order.notification_count, 0)

    def test_create_refuses_what_a_new_order_cannot_have(self):
        orders = self.env["payment.order"].with_user(self.user).with_context(**FORGED_CONTEXT)
        base = {"partner_id": self.customer.id, "due_date": "2026-12-01", "amount": 100.0}
        for extra in (
            {"state": "overdue"},
            {"state": "paid"},
            {"name": "OP/2026/99999"},
            {"balance": 1000.0},
            {"balance": 10.0},
            {"paid_date": "2026-11-01"},
            {"origin": "invoice"},
        ):
            with self.subTest(extra=extra), self.assertRaisesRegex(UserError, "cannot be given"):
                orders.create(dict(base, **extra))
        order = orders.create(base)
        self.assertRecordValues(order, [{"state": "pending", "balance": 100.0, "origin": "manual"}])
        self.assertTrue(order.name.startswith("OP/"))

    def test_user_cannot_create_in_a_company_they_do_not_belong_to(self):
        orders = self.env["payment.order"].with_user(self.user).with_context(**FORGED_CONTEXT)
        with self.assertRaises(UserError):
            orders.create(
                {
                    "partner_id": self.customer.id,
                    "due_date": "2026-12-01",
                    "amount": 10.0,
                    "company_id": self.company_2.id,
                }
            )

    def test_balance_never_above_total_nor_on_closed_orders(self):
        order = self.create_order(100.0, charges_amount=10.0)
        with self.assertRaisesRegex(UserError, "between 0 and its total"):
            order._set_balance(110.01)
        with self.assertRaisesRegex(UserError, "between 0 and its total"):
            order._set_balance(-1.0)
        # even the addon's own path cannot store it: the database refuses
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.cr.savepoint():
            order._internal_edit().write({"balance": 500.0})
            order.flush_recordset()
        order._set_balance(60.0)
        self.assertEqual(order.balance, 60.0)
        order.action_cancel()
        with self.assertRaisesRegex(UserError, "cancelled, which is final"):
            order._set_balance(10.0)
        with self.assertRaisesRegex(UserError, "cancelled, which is final"):
            order._set_charges(5.0)
        self.assertEqual(order.balance, 60.0)

    def test_charges_move_the_balance(self):
        order = self.create_order(100.0)
        order._set_balance(40.0)
        order._set_charges(15.0, reason="Late fee of November")
        self.assertRecordValues(order, [{"charges_amount": 15.0, "amount_total": 115.0, "balance": 55.0}])
        with self.assertRaisesRegex(UserError, "cannot be negative"):
            order._set_charges(-5.0)

    @freeze_time("2026-11-22 15:00:00")
    def test_balance_changes_are_tracked_in_the_chatter(self):
        order = self.create_order(100.0).with_context(tracking_disable=False)
        self.cr.flush()  # Odoo does not track the changes of a record in the transaction that created it
        order._set_balance(40.0, reason="Partial payment at the counter")
        self.env.flush_all()
        self.cr.flush()
        tracked = order.message_ids.tracking_value_ids.filtered(lambda value: value.field_id.name == "balance")
        self.assertEqual((tracked.old_value_float, tracked.new_value_float), (100.0, 40.0))
        self.assertIn("Partial payment at the counter", " ".join(order.message_ids.mapped(lambda m: str(m.body))))
        order._set_balance(0.0)
        self.env.flush_all()
        self.cr.flush()
        self.assertRecordValues(order, [{"state": "paid", "paid_date": fields.Date.to_date("2026-11-22")}])
        states = order.message_ids.tracking_value_ids.filtered(lambda value: value.field_id.name == "state")
        self.assertEqual(states.mapped("new_value_char"), ["Paid"])


@tagged("post_install", "-at_install")
class TestCommunicationIntegrity(PaymentDunningCase):
    """A message is about its own customer's orders in its own company."""

    def test_user_cannot_write_the_log(self):
        order = self.create_order(100.0)
        other = self.create_order(100.0, company=self.company_2)
        lines = self.env["payment.order.notification"].with_user(self.user).with_context(**FORGED_CONTEXT)
        with self.assertRaises(AccessError):
            lines.create(
                {
                    "partner_id": self.customer.id,
                    "company_id": self.company.id,
                    "channel": "email",
                    "order_ids": [Command.set((order | other).ids)],
                }
            )

    def test_a_message_cannot_link_another_company_or_customer(self):
        mine = self.create_order(100.0)
        theirs = self.create_order(100.0, company=self.company_2)
        someone_else = self.create_order(100.0, partner=self.customer_2)
        lines = self.env["payment.order.notification"].sudo()
        for stranger in (theirs, someone_else):
            with self.subTest(order=stranger.name), self.assertRaisesRegex(ValidationError, "can only be about"):
                lines.create(
                    {
                        "partner_id": self.customer.id,
                        "company_id": self.company.id,
                        "channel": "email",
                        "order_ids": [Command.set((mine | stranger).ids)],
                    }
                )

    def test_queue_splits_orders_by_company(self):
        mine = self.create_order(100.0)
        theirs = self.create_order(100.0, company=self.company_2)
        template = self.env["dunning.template"].create(
            {"name": "Both", "body": "Hola", "channel_email": True, "channel_whatsapp": False}
        )
        queued = self.env["payment.order.notification"].sudo()._queue(template, mine | theirs)
        self.assertEqual(
            {(line.company_id, line.order_ids) for line in queued},
            {(self.company, mine), (self.company_2, theirs)},
        )

    def test_statement_of_a_message_lists_its_company_only(self):
        mine = self.create_order(100.0, concept="Fibra Lima")
        theirs = self.create_order(100.0, concept="Fibra Madrid", company=self.company_2)
        template = self.env["dunning.template"].create({"name": "Estado", "body": "Hola", "channel_email": True})
        line = self.env["payment.order.notification"].sudo()._queue(template, mine)
        report = line._statement_report()
        html, _format = report._render_qweb_html(report, self.customer.ids)
        self.assertIn(mine.concept, html.decode())
        self.assertNotIn(theirs.concept, html.decode())


@tagged("post_install", "-at_install")
class TestPlansCannotStopTheWorld(PaymentDunningCase):
    @freeze_time("2026-11-20 12:00:00")
    def test_a_broken_plan_is_isolated_and_shown_on_the_plan(self):
        plans = self.env["service.plan"]
        good = plans.create(
            {"partner_id": self.customer_2.id, "name": "Internet", "amount": 50.0, "next_due_date": "2026-11-21"}
        )
        broken = plans.create(
            {"partner_id": self.customer.id, "name": "Pensión", "amount": 80.0, "next_due_date": "2026-11-21"}
        )
        # what an RPC write can no longer store, but an old database or another module might hold
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE service_plan SET billing_day = -1, period_months = 100000 WHERE id = %s", [broken.id]
        )
        broken.invalidate_recordset()
        with mute_logger("odoo.addons.payment_dunning.models.service_plan"):
            orders = plans._generate_orders(self.company)
        self.assertEqual(orders.partner_id, self.customer_2, "the other customers are billed")
        self.assertTrue(good.line_ids)
        self.assertFalse(broken.line_ids)
        self.assertTrue(broken.generation_error, "the plan says why it was not billed")
        self.assertTrue(broken.generation_error_date)
        self.assertFalse(good.generation_error)
        self.assertIn(broken, plans.search([("generation_error", "!=", False)]))
        # a user cannot hide the error, nor pretend installments were billed
        for vals in ({"generation_error": False}, {"installments_billed": 4}):
            with self.subTest(vals=vals), self.assertRaisesRegex(UserError, "kept by the order generation"):
                broken.with_user(self.user).with_context(**FORGED_CONTEXT).write(vals)


@tagged("post_install", "-at_install")
class TestIntegrityOverJsonRpc(PaymentDunningCase, HttpCase):
    """The same calls as a browser or a script would make them, with the forged context."""

    def call_kw(self, model, method, args, kwargs=None):
        response = self.url_open(
            f"/web/dataset/call_kw/{model}/{method}",
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {
                        "model": model,
                        "method": method,
                        "args": args,
                        "kwargs": {"context": FORGED_CONTEXT, **(kwargs or {})},
                    },
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        return response.json()

    def test_forged_context_over_json_rpc(self):
        order = self.create_order(100.0, concept="November")
        self.authenticate(self.user.login, self.user.login)
        with mute_logger("odoo.http"):
            for vals in ({"concept": "Changed"}, {"balance": 1.0}, {"state": "paid"}):
                reply = self.call_kw("payment.order", "write", [order.ids, vals])
                self.assertIn("error", reply, vals)
            reply = self.call_kw(
                "payment.order",
                "create",
                [[{"partner_id": self.customer.id, "due_date": "2026-12-01", "amount": 5.0, "state": "overdue"}]],
            )
            self.assertIn("error", reply)
            # the addon's internal methods are not callable over RPC
            reply = self.call_kw("payment.order", "_set_balance", [order.ids, 1.0])
            self.assertIn("error", reply)
        order.invalidate_recordset()
        self.assertRecordValues(order, [{"concept": "November", "balance": 100.0, "state": "pending"}])
