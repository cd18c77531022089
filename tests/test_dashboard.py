from datetime import timedelta

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
