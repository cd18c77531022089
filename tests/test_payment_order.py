from freezegun import freeze_time
from psycopg2 import IntegrityError

from odoo import Command, fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import PaymentDunningCase


@tagged("post_install", "-at_install")
class TestPaymentOrderLifecycle(PaymentDunningCase):
    def test_single_amount_becomes_one_line(self):
        order = self.create_order(150.5, concept="Internet 100 Mbps")
        self.assertEqual(len(order.line_ids), 1)
        self.assertEqual(order.line_ids.name, "Internet 100 Mbps")
        self.assertEqual(order.amount, 150.5)
        self.assertEqual(order.balance, 150.5, "a new order owes its whole amount")
        self.assertEqual(order.state, "pending")
        self.assertEqual(order.origin, "manual")
        self.assertEqual(order.currency_id, self.env.ref("base.PEN"))

    def test_amount_is_sum_of_lines_plus_charges(self):
        order = self.env["payment.order"].create(
            {
                "partner_id": self.customer.id,
                "due_date": "2026-12-01",
                "line_ids": self.lines(250.0, 30.0),
                "charges_amount": 12.5,
            }
        )
        self.assertEqual(order.amount, 280.0)
        self.assertEqual(order.amount_total, 292.5)
        self.assertEqual(order.balance, 292.5)

    def test_amount_must_be_positive(self):
        with self.assertRaises(ValidationError):
            self.create_order(0.0)
        with self.assertRaises(ValidationError):
            self.env["payment.order"].create({"partner_id": self.customer.id, "due_date": "2026-12-01"})

    @freeze_time("2026-03-10 15:00:00")
    def test_sequence_per_company(self):
        first = self.create_order()
        second = self.create_order()
        other_company = self.create_order(company=self.company_2)
        self.assertEqual(first.name, "OP/2026/00001")
        self.assertEqual(second.name, "OP/2026/00002")
        self.assertEqual(other_company.name, "OP/2026/00001", "each company numbers its own orders")

    def test_payment_code_and_installment_unique_per_company(self):
        self.create_order(payment_code="LOAN-7", installment=1)
        self.create_order(payment_code="LOAN-7", installment=2)
        self.create_order(payment_code="LOAN-7", installment=1, company=self.company_2)
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.cr.savepoint():
            self.create_order(payment_code="LOAN-7", installment=1)

    def test_no_edit_after_creation(self):
        order = self.create_order(100.0, concept="November")
        for vals in (
            {"partner_id": self.customer_2.id},
            {"due_date": "2027-01-01"},
            {"concept": "December"},
            {"line_ids": [Command.create({"name": "Extra", "amount": 5.0})]},
        ):
            with self.assertRaisesRegex(UserError, "Cancel it and create a new order"):
                order.write(vals)
        with self.assertRaisesRegex(UserError, "Cancel it and create a new order"):
            order.line_ids.amount = 1.0
        with self.assertRaisesRegex(UserError, "Cancel it and create a new order"):
            order.line_ids.unlink()
        with self.assertRaisesRegex(UserError, "Cancel it and create a new order"):
            self.env["payment.order.line"].create({"order_id": order.id, "name": "x", "amount": 1.0})
        self.assertEqual(order.amount, 100.0)
        self.assertEqual(order.partner_id, self.customer)
        # saving a form that did not change those fields is fine
        order.write({"due_date": order.due_date, "partner_id": order.partner_id.id})

    @freeze_time("2026-11-22 15:00:00")
    def test_pay_records_date_and_clears_balance(self):
        order = self.create_order(80.0, due_date="2026-11-20")
        order.action_pay()
        self.assertEqual(order.state, "paid")
        self.assertEqual(order.paid_date, fields.Date.to_date("2026-11-22"))
        self.assertEqual(order.balance, 0.0)
        self.assertEqual(order.amount, 80.0, "paying keeps what was charged")
        with self.assertRaisesRegex(UserError, "Only pending or overdue orders can be paid"):
            order.action_pay()
        with self.assertRaisesRegex(UserError, "Only pending or overdue orders can be cancelled"):
            order.action_cancel()

    @freeze_time("2026-11-23 04:30:00")
    def test_paid_date_is_the_company_day(self):
        # 04:30 UTC is still 22 November (23:30) in Lima
        order = self.create_order(80.0)
        order.action_pay()
        self.assertEqual(order.paid_date, fields.Date.to_date("2026-11-22"))

    def test_cancel_is_final(self):
        order = self.create_order()
        order.action_cancel()
        self.assertEqual(order.state, "cancelled")
        with self.assertRaisesRegex(UserError, "Only pending or overdue orders can be paid"):
            order.action_pay()
        for state in ("pending", "overdue"):
            with self.assertRaisesRegex(UserError, "change only through its own actions"):
                order.write({"state": state})
            with self.assertRaisesRegex(UserError, "cancelled, which is final"):
                order._internal_edit().write({"state": state})
        self.assertEqual(order.state, "cancelled")

    def test_cannot_create_closed_order(self):
        with self.assertRaises(UserError):
            self.create_order(state="paid")

    def test_copy_starts_pending(self):
        order = self.create_order(60.0)
        order.action_cancel()
        copy = order.copy({"due_date": "2027-01-10"})
        self.assertEqual(copy.state, "pending")
        self.assertEqual(copy.amount, 60.0)
        self.assertEqual(copy.balance, 60.0)
        self.assertNotEqual(copy.name, order.name)

    @freeze_time("2026-11-22 15:00:00")
    def test_balance_zero_pays_cents_do_not(self):
        order = self.create_order(100.0)
        order._set_balance(0.01)
        self.assertEqual(order.state, "pending", "a cent is still owed")
        order._set_balance(0.0)
        self.assertEqual(order.state, "paid")
        self.assertEqual(order.paid_date, fields.Date.to_date("2026-11-22"))

    def test_only_cancelled_orders_can_be_deleted(self):
        order = self.create_order()
        with self.assertRaisesRegex(UserError, "cancel it instead"):
            order.unlink()
        order.action_cancel()
        line = order.line_ids
        order.unlink()
        self.assertFalse(order.exists())
        self.assertFalse(line.exists())


@tagged("post_install", "-at_install")
class TestMarkOverdue(PaymentDunningCase):
    def test_due_yesterday_is_overdue_due_today_is_not(self):
        with freeze_time("2026-11-10 15:00:00"):
            yesterday = self.create_order(due_date="2026-11-21")
            today = self.create_order(due_date="2026-11-22")
            paid = self.create_order(due_date="2026-11-01")
            paid.action_pay()
            cancelled = self.create_order(due_date="2026-11-01")
            cancelled.action_cancel()
        with freeze_time("2026-11-22 15:00:00"):
            count = self.env["payment.order"]._cron_mark_overdue()
        self.assertEqual(count, 1)
        self.assertEqual(yesterday.state, "overdue")
        self.assertEqual(today.state, "pending")
        self.assertEqual(paid.state, "paid")
        self.assertEqual(cancelled.state, "cancelled")

    def test_rerun_changes_nothing(self):
        self.create_order(due_date="2026-11-01")
        with freeze_time("2026-11-22 15:00:00"):
            self.assertEqual(self.env["payment.order"]._cron_mark_overdue(), 1)
            self.assertEqual(self.env["payment.order"]._cron_mark_overdue(), 0)

    def test_company_timezone_decides_the_day(self):
        order = self.create_order(due_date="2026-11-22")
        # 03:00 UTC on the 23rd is 22:00 on the 22nd in Lima: not overdue yet
        with freeze_time("2026-11-23 03:00:00"):
            self.env["payment.order"]._cron_mark_overdue()
        self.assertEqual(order.state, "pending")
        with freeze_time("2026-11-23 05:30:00"):
            self.env["payment.order"]._cron_mark_overdue()
        self.assertEqual(order.state, "overdue")

    def test_each_company_has_its_own_day(self):
        # Madrid (UTC+1) has reached the 23rd at 23:30 UTC, Lima has not
        self.company_2.partner_id.tz = "Europe/Madrid"
        lima = self.create_order(due_date="2026-11-22")
        madrid = self.create_order(due_date="2026-11-22", company=self.company_2, partner=self.customer_2)
        with freeze_time("2026-11-22 23:30:00"):
            self.env["payment.order"]._cron_mark_overdue()
        self.assertEqual(lima.state, "pending")
        self.assertEqual(madrid.state, "overdue")

    def test_overdue_order_can_still_be_paid(self):
        order = self.create_order(due_date="2026-11-01")
        with freeze_time("2026-11-22 15:00:00"):
            self.env["payment.order"]._cron_mark_overdue()
            self.assertEqual(order.days_overdue, 21)
            order.action_pay()
        self.assertEqual(order.state, "paid")
        self.assertEqual(order.days_overdue, 0)

    def test_cron_record_runs_the_job(self):
        order = self.create_order(due_date="2020-01-01")
        cron = self.env.ref("payment_dunning.cron_payment_order_mark_overdue")
        cron.method_direct_trigger()
        self.assertEqual(order.state, "overdue")


@tagged("post_install", "-at_install")
class TestStateTotals(PaymentDunningCase):
    @freeze_time("2026-11-20 15:00:00")
    def test_totals_per_state_follow_the_search(self):
        self.create_order(100.0)
        self.create_order(50.0, partner=self.customer_2)
        self.create_order(30.0).action_pay()
        self.create_order(20.0).action_cancel()
        self.create_order(10.0, due_date="2020-01-01")
        self.env["payment.order"]._cron_mark_overdue()

        def amounts(domain):
            return {
                total["state"]: (total["count"], [a["amount"] for a in total["amounts"]])
                for total in self.env["payment.order"].get_state_totals(domain)
            }

        totals = amounts([("company_id", "=", self.company.id)])
        self.assertEqual(totals["pending"], (2, [150.0]))
        self.assertEqual(totals["paid"], (1, [30.0]))
        self.assertEqual(totals["cancelled"], (1, [20.0]))
        self.assertEqual(totals["overdue"], (1, [10.0]))
        by_customer = amounts([("partner_id", "=", self.customer_2.id)])
        self.assertEqual(by_customer["pending"], (1, [50.0]))
        self.assertEqual(by_customer["paid"], (0, [0.0]))
        formatted = self.env["payment.order"].get_state_totals([("partner_id", "=", self.customer_2.id)])
        self.assertIn("S/", formatted[0]["amounts"][0]["formatted"])
