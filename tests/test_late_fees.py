from freezegun import freeze_time

from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import PaymentDunningCase

# noon in Lima, the companies' collections timezone
NOON = "17:00:00"


@tagged("post_install", "-at_install")
class TestLateFees(PaymentDunningCase):
    """Late fees and interest: after the grace period, a fee once and daily interest, up to the cap."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.write(
            {
                "late_fee_active": True,
                "late_fee_grace_days": 5,
                "late_fee_fixed": 10.0,
                "late_fee_monthly_rate": 3.0,
                "late_fee_cap_percent": 10.0,
            }
        )
        cls.charges = cls.env["payment.order.charge"]

    def run_job(self, day):
        with freeze_time(f"{day} {NOON}"):
            return self.charges._cron_apply_late_fees()

    def test_grace_fee_once_and_daily_interest_caught_up(self):
        order = self.create_order(1000.0, due_date="2026-06-15")
        self.assertEqual(self.run_job("2026-06-20"), 0, "5 days late: still in the grace period")
        self.assertEqual(order.charges_amount, 0.0)
        self.assertEqual(self.run_job("2026-06-21"), 1)
        self.assertEqual(order.charges_amount, 11.0, "the fee, and a day of 3% a month on 1,000")
        self.assertEqual(order.balance, 1011.0)
        self.assertEqual(order.amount_total, 1011.0)
        self.assertEqual(self.run_job("2026-06-21"), 0, "a second run the same day adds nothing")
        # the 22nd was missed: the 23rd catches it up
        self.run_job("2026-06-23")
        self.assertEqual(order.charges_amount, 13.0)
        history = order.charge_ids.sorted("id")
        self.assertEqual(history.mapped("kind"), ["fee", "interest", "interest"])
        self.assertEqual(history.mapped("amount"), [10.0, 1.0, 2.0])
        self.assertEqual(str(history[-1].date_from), "2026-06-22")

    def test_cap_cuts_the_last_charge(self):
        self.company.late_fee_cap_percent = 1.5
        order = self.create_order(1000.0, due_date="2026-06-15")
        self.run_job("2026-06-21")
        self.run_job("2026-06-30")
        self.assertEqual(order.charges_amount, 15.0, "1.5% of 1,000: 11 then 4 of the 9 days' interest")
        self.assertEqual(self.run_job("2026-07-01"), 0, "at the cap nothing more")

    def test_interest_on_what_is_owed_of_the_amount(self):
        order = self.create_order(1000.0, due_date="2026-06-15")
        order._register_payment(500.0, "2026-06-16")
        self.run_job("2026-06-21")
        self.assertEqual(order.charges_amount, 10.5, "the fee and a day on the 500 still owed")

    def test_closed_orders_other_companies_and_off_by_default(self):
        paid = self.create_order(1000.0, due_date="2026-06-01")
        paid.action_pay()
        cancelled = self.create_order(1000.0, due_date="2026-06-01")
        cancelled.action_cancel()
        other = self.create_order(1000.0, due_date="2026-06-01", company=self.company_2, partner=self.customer_2)
        self.assertFalse(self.company_2.late_fee_active, "off by default")
        self.run_job("2026-06-21")
        self.assertEqual((paid | cancelled | other).mapped("charges_amount"), [0.0, 0.0, 0.0])

    def test_charges_are_tracked_in_the_chatter(self):
        order = self.create_order(1000.0, due_date="2026-06-15")
        self.run_job("2026-06-21")
        tracking = order.message_ids.tracking_value_ids.filtered(lambda value: value.field_id.name == "charges_amount")
        self.assertEqual((tracking.old_value_float, tracking.new_value_float), (0.0, 11.0))
        notes = len(order.message_ids)
        self.run_job("2026-06-22")
        self.assertEqual(order.charges_amount, 12.0)
        self.assertEqual(len(order.message_ids), notes, "a day's interest is a line of the charges, not a note")

    def test_preview_shows_what_the_job_then_adds(self):
        first = self.create_order(1000.0, due_date="2026-06-10")
        self.create_order(200.0, due_date="2026-06-01")
        terms = self.company._late_fee_terms()
        with freeze_time(f"2026-06-21 {NOON}"):
            action = self.env["payment.order.late.fee.preview"].with_user(self.manager)._open_for(self.company, terms)
            preview = self.env["payment.order.late.fee.preview"].browse(action["res_id"])
            self.assertEqual(preview.order_count, 2)
            expected = preview.total
            self.assertIn(first.name, preview.detail)
            self.assertEqual(first.charges_amount, 0.0, "the preview writes nothing")
        self.run_job("2026-06-21")
        self.assertAlmostEqual(sum(self.charges.search([]).mapped("amount")), expected)
        with self.assertRaises(AccessError):
            self.env["payment.order.late.fee.preview"].with_user(self.user)._open_for(self.company, terms)

    def test_settings_preview_uses_the_terms_on_the_screen(self):
        self.create_order(1000.0, due_date="2026-06-10")
        settings = self.env["payment.dunning.settings"].with_user(self.manager).create({"dunning_late_fee_fixed": 25.0})
        with freeze_time(f"2026-06-21 {NOON}"):
            action = settings.action_preview_late_fees()
            preview = self.env["payment.order.late.fee.preview"].browse(action["res_id"])
            self.assertEqual(preview.fee_total, 25.0, "the fee typed, not yet saved")

    def test_history_balance_variable_and_statement_show_the_charges(self):
        order = self.create_order(1000.0, due_date="2026-06-15", concept="Fiber link")
        self.run_job("2026-06-21")
        self.assertEqual(order.with_user(self.user).charge_ids.mapped("amount"), [1.0, 10.0])
        other_user = self.charges.with_user(self.user_company_2).with_context(allowed_company_ids=self.company_2.ids)
        self.assertFalse(other_user.search([]), "another company's user sees none")
        template = self.env.ref("payment_dunning.dunning_template_before_due")
        self.assertIn("1,011.00", template._render_text("@variable_saldo", order))
        report = self.env.ref("payment_dunning.action_report_account_statement")
        html, _format = report._render_qweb_html(report, self.customer.ids)
        charges_cell = html.decode().split("o_statement_charges", 1)[1].split("</td>", 1)[0]
        self.assertIn("11.00", charges_cell)
