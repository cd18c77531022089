from datetime import timedelta

from odoo import fields
from odoo.addons.payment_dunning.models.payment_order import company_today
from odoo.tests import tagged

from .common import PaymentDunningCase


@tagged("post_install", "-at_install")
class TestAgingAndDashboard(PaymentDunningCase):
    """The aging view counts days in the database's own clock, so these dates follow the real today."""

    def setUp(self):
        super().setUp()
        self.today = company_today(self.company)

        def order(amount, days_late):
            return self.create_order(amount, due_date=self.today - timedelta(days=days_late))

        self.not_due = order(10.0, -5)
        self.due_today = order(20.0, 0)
        self.late_5 = order(30.0, 5)
        self.late_45 = order(40.0, 45)
        self.late_75 = order(50.0, 75)
        self.late_200 = order(60.0, 200)
        self.paid = order(70.0, 45)
        self.paid.action_pay()
        self.late_5._set_balance(12.5)
        self.env.flush_all()

    def test_aging_buckets_follow_days_past_due(self):
        groups = self.env["payment.dunning.aging"]._read_group(
            [("company_id", "=", self.company.id)], ["bucket"], ["balance:sum", "__count"]
        )
        self.assertEqual(
            {bucket: (amount, count) for bucket, amount, count in groups},
            {"0": (30.0, 2), "1_30": (12.5, 1), "31_60": (40.0, 1), "61_90": (50.0, 1), "90_plus": (60.0, 1)},
        )
        row = self.env["payment.dunning.aging"].search([("order_id", "=", self.late_200.id)])
        self.assertEqual((row.days_overdue, row.partner_id), (200, self.customer))

    def test_aging_excludes_paid_orders_and_other_companies(self):
        rows = self.env["payment.dunning.aging"].search([("company_id", "=", self.company.id)])
        self.assertNotIn(self.paid, rows.order_id)
        self.assertEqual(len(rows), 6)
        other = (
            self.env["payment.dunning.aging"]
            .with_user(self.user_company_2)
            .with_context(allowed_company_ids=self.company_2.ids)
            .search([])
        )
        self.assertFalse(other & rows, "another company's user sees none of these")

    def test_dashboard_figures(self):
        data = self.env["payment.order"].with_company(self.company).get_dashboard_data()
        aging = {entry["bucket"]: (entry["count"], entry["amount"]) for entry in data["aging"]}
        self.assertEqual(aging["90_plus"], (1, 60.0))
        self.assertEqual(aging["1_30"], (1, 12.5))
        self.assertEqual(data["due_this_week"]["count"], 2, "due today and in 5 days")
        self.assertEqual(
            self.env["payment.order"].search(data["due_this_week"]["domain"]), self.not_due | self.due_today
        )
        paid = next(total for total in data["totals"] if total["state"] == "paid")
        self.assertEqual(paid["count"], 1)
        self.assertEqual((data["messages"]["sent"], data["messages"]["failed"]), (0, 0))
        self.create_order(5.0).action_notify()  # the customer has no gateway configured: failures
        data = self.env["payment.order"].with_company(self.company).get_dashboard_data()
        self.assertGreaterEqual(data["messages"]["failed"], 1)


@tagged("post_install", "-at_install")
class TestDashboardCollections(PaymentDunningCase):
    """What the dashboard says about getting paid: collected this month by method, promises, days to pay,
    and which rule works. Dates follow the real today, as the dashboard does."""

    def setUp(self):
        super().setUp()
        self.today = company_today(self.company)
        self.method = lambda code: self.env.ref(f"payment_dunning.payment_method_{code}")

    def dashboard(self):
        return self.env["payment.order"].with_user(self.user).get_dashboard_data()

    def test_collected_this_month_by_method(self):
        order = self.create_order(500.0, due_date=self.today)
        order._register_payment(30.0, self.today, self.method("yape"))
        order._register_payment(20.0, self.today, self.method("cash"))
        cancelled = order._register_payment(40.0, self.today, self.method("cash"))
        cancelled.with_user(self.manager).action_cancel_payment("bounced")
        self.create_order(100.0, due_date=self.today)._register_payment(100.0, self.today)
        last_month = self.today.replace(day=1) - timedelta(days=3)
        self.create_order(15.0, due_date=self.today)._register_payment(15.0, last_month)
        other = self.create_order(99.0, company=self.company_2, partner=self.customer_2)
        other.sudo()._register_payment(99.0, self.today)
        collected = self.dashboard()["collected"]
        self.assertEqual(collected["count"], 3)
        self.assertIn("150.00", collected["formatted"])
        self.assertIn("15.00", collected["last_month"])
        methods = {method["name"]: (method["count"], method["amount"]) for method in collected["methods"]}
        self.assertEqual(methods, {"No method": (1, 100.0), "Yape": (1, 30.0), "Cash": (1, 20.0)})
        yape = next(method for method in collected["methods"] if method["name"] == "Yape")
        listed = self.env["payment.order.payment"].with_user(self.user).search(yape["domain"])
        self.assertEqual(listed.mapped("amount"), [30.0], "the figure opens its own payments")

    def test_average_days_to_pay(self):
        late = self.create_order(100.0, due_date=self.today - timedelta(days=10))
        early = self.create_order(100.0, due_date=self.today + timedelta(days=4))
        forgiven = self.create_order(100.0, due_date=self.today - timedelta(days=60))
        late._register_payment(100.0, self.today)
        early._register_payment(100.0, self.today)
        forgiven.with_user(self.manager)._write_off(100.0, "uncollectable")
        figures = self.dashboard()["days_to_pay"]
        self.assertEqual(figures["count"], 2, "the written-off order was not paid")
        self.assertEqual(figures["after_due"], 3.0, "(10 + -4) / 2")

    def test_which_rule_works(self):
        rule = self.env["dunning.template"].create(
            {"name": "Overdue reminder", "auto_send": True, "days_from": 1, "days_to": 30, "interval_days": 7}
        )
        quick, slow, silent = (self.create_order(200.0, due_date=self.today - timedelta(days=15)) for _ in range(3))
        lines = self.env["payment.order.notification"]._queue(rule, quick | slow | silent, channels=["email"])
        sent_at = fields.Datetime.now() - timedelta(days=12)
        lines.sudo().write({"state": "sent", "sent_at": sent_at})
        quick._register_payment(80.0, sent_at.date() + timedelta(days=3))
        slow._register_payment(50.0, sent_at.date() + timedelta(days=11))
        [row] = [row for row in self.dashboard()["rules"]["rules"] if row["id"] == rule.id]
        self.assertEqual((row["messages"], row["orders"], row["paid_orders"], row["rate"]), (1, 3, 1, 33))
        self.assertIn("80.00", row["collected"], "the payment 11 days later is not the rule's doing")
        self.assertTrue(row["automatic"])

    def test_promises_due_this_week_and_broken(self):
        order = self.create_order(300.0, due_date=self.today - timedelta(days=5))
        promises = self.env["payment.order.promise"]
        values = {"partner_id": self.customer.id, "order_ids": [(6, 0, order.ids)], "promised_amount": 100.0}
        promises.create({**values, "promised_date": self.today + timedelta(days=3)})
        promises.create({**values, "promised_date": self.today + timedelta(days=20)})
        broken = promises.create({**values, "promised_date": self.today})
        broken._edit().write({"state": "broken"})
        figures = self.dashboard()["promises"]
        self.assertEqual(figures["due_this_week"]["count"], 1, "the one in 20 days is not this week")
        self.assertIn("100.00", figures["due_this_week"]["formatted"])
        self.assertEqual(figures["broken"]["count"], 1)
