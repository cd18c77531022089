"""Service plans and dunning rules as the product documents describe them: the start and end dates
measured on the day an order is created, a total split into installments, line labels in the
customer's language, the statement with every dunning message and a rule ready from the start."""

from datetime import date, timedelta

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged

from .test_dunning_run import DunningCase
from .test_service_plan import MORNING, ServicePlanCase


def daily(first, last):
    """Every day from ``first`` to ``last``, as the daily generation job sees them."""
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


@tagged("post_install", "-at_install")
class TestPlanWindowAtCreation(ServicePlanCase):
    """Spec 2: the service appears on the orders *created* after the start date and before the end
    date; the due date of the period does not decide."""

    def generate_daily(self, first, last):
        """Run the job every day from ``first`` to ``last``: {day of creation: orders created}."""
        created = {}
        for day in daily(first, last):
            orders = self.generate(day.isoformat())
            if orders:
                created[day] = orders
        return created

    def test_spec_combined_example_bills_three_of_four_installments(self):
        """4 installments, dates 1 April to 30 June ("31 de junio"), due on the 5th, the job running
        every day: the orders created on 2 April, 2 May and 2 June bill the plan; the fourth one
        would be created on 2 July, outside the dates, so it never is."""
        plan = self.plan(
            "Equipo", next_due_date="2026-04-05", payment_mode="installments", installments=4,
            total_amount=200.0, start_date="2026-04-01", end_date="2026-06-30",
        )  # fmt: skip
        created = self.generate_daily(date(2026, 3, 25), date(2026, 8, 10))
        self.assertEqual(list(created), [date(2026, 4, 2), date(2026, 5, 2), date(2026, 6, 2)])
        orders = self.env["payment.order"].union(*created.values())
        self.assertEqual(len(orders), 3)
        self.assertEqual(self.billed_dates(plan), [date(2026, 4, 5), date(2026, 5, 5), date(2026, 6, 5)])
        self.assertEqual(
            orders.sorted("due_date").line_ids.mapped("name"),
            [f"Equipo (installment {number} of 4)" for number in (1, 2, 3)],
        )
        self.assertTrue(plan.billing_done)
        orders.action_pay()
        self.assertEqual(plan.state, "paid", "the fourth installment will never be billed")

    def test_the_day_of_creation_decides_not_the_due_date(self):
        """Due on the 1st, the orders are created 3 days before: the April period's order is created
        on 29 March, before the start date, and does not bill the plan; the July period's order is
        created on 28 June, before the end date, and does."""
        plan = self.plan(
            "Equipo", next_due_date="2026-04-01", payment_mode="installments", installments=4,
            total_amount=200.0, start_date="2026-04-01", end_date="2026-06-30",
        )  # fmt: skip
        created = self.generate_daily(date(2026, 3, 25), date(2026, 8, 10))
        self.assertEqual(list(created), [date(2026, 4, 28), date(2026, 5, 29), date(2026, 6, 28)])
        self.assertEqual(self.billed_dates(plan), [date(2026, 5, 1), date(2026, 6, 1), date(2026, 7, 1)])
        self.assertEqual(plan.installments_billed, 3)
        self.assertTrue(plan.billing_done)

    def test_start_date_after_the_order_is_created_skips_the_period(self):
        plan = self.plan(next_due_date="2026-04-01", start_date="2026-04-01")
        self.assertFalse(self.generate("2026-03-29"), "created on 29 March, before the start date")
        self.assertEqual(plan.next_due_date, date(2026, 5, 1), "that period is passed over, not billed later")
        self.assertFalse(self.generate("2026-04-01"))
        self.assertEqual(self.generate("2026-04-28").due_date, date(2026, 5, 1))

    def test_end_date_counts_the_order_created_before_it(self):
        plan = self.plan(next_due_date="2026-07-01", end_date="2026-06-30")
        order = self.generate("2026-06-28")
        self.assertEqual(order.due_date, date(2026, 7, 1), "due after the end date, created before it: billed")
        self.assertTrue(plan.billing_done, "the next order would be created on 29 July")
        self.assertFalse(self.generate("2026-07-29"))

    def test_plan_left_behind_after_its_end_date_bills_nothing(self):
        plan = self.plan(next_due_date="2026-01-10", end_date="2026-01-31")
        self.assertFalse(self.generate("2026-04-20"), "the order would be created on 20 April")
        self.assertTrue(plan.billing_done)
        self.assertFalse(plan.line_ids)

    def test_generate_now_previews_with_the_same_rule(self):
        self.plan("Starts in June", next_due_date="2026-06-01", start_date="2026-06-01")
        self.plan("Ends today", next_due_date="2026-06-01", end_date="2026-05-29")
        self.plan("Ends in May", next_due_date="2026-06-01", end_date="2026-05-31")
        with freeze_time(f"2026-05-29 {MORNING}"):
            wizard = self.env["service.plan.generate"].with_user(self.manager).create({})
            self.assertEqual((wizard.plan_count, wizard.order_count), (2, 1), "the plans that end, in one order")
            orders = self.env["service.plan"]._generate_orders(self.company)
        self.assertEqual(orders.line_ids.mapped("name"), ["Ends today", "Ends in May"])

    def test_form_says_what_the_dates_measure(self):
        for fname in ("start_date", "end_date"):
            self.assertIn("created", self.env["service.plan"]._fields[fname].help)
            self.assertIn("not its due date", self.env["service.plan"]._fields[fname].help)


@tagged("post_install", "-at_install")
class TestInstallmentTotal(ServicePlanCase):
    """Spec 2: "cobrar el total de un plan dividido en varias mensualidades"."""

    def test_total_is_split_with_the_cents_on_the_last_installment(self):
        plan = self.plan("Antena", payment_mode="installments", installments=3, total_amount=400.0)
        self.assertEqual(plan.amount, 133.33)
        self.assertIn("133.33", plan.installment_note)
        self.assertIn("installment 3 of S/\xa0133.34", plan.installment_note)
        orders = self.generate_monthly("2026-01-07", "2026-02-07", "2026-03-07", "2026-04-07")
        self.assertEqual(len(orders), 3)
        self.assertEqual(orders.sorted("due_date").mapped("amount_total"), [133.33, 133.33, 133.34])
        self.assertAlmostEqual(sum(orders.mapped("amount_total")), 400.0, places=2)

    def test_even_split_says_so(self):
        plan = self.plan("Router", payment_mode="installments", installments=4, total_amount=240.0)
        self.assertEqual(plan.amount, 60.0)
        self.assertEqual(plan.installment_note, "4 installments of S/\xa060.00")

    def test_cancelled_installment_billed_again_keeps_the_total(self):
        plan = self.plan("Antena", payment_mode="installments", installments=3, total_amount=400.0)
        orders = self.generate_monthly("2026-01-07", "2026-02-07", "2026-03-07").sorted("due_date")
        self.assertTrue(plan.billing_done)
        orders[1].action_cancel()
        self.assertFalse(plan.billing_done, "the cancelled installment is owed again")
        again = self.generate("2026-04-07")
        self.assertEqual(again.line_ids.name, "Antena (installment 3 of 3)")
        self.assertEqual(again.amount_total, 133.33, "what the total still lacks")
        billed = (orders | again).filtered(lambda order: order.state != "cancelled")
        self.assertAlmostEqual(sum(billed.mapped("amount_total")), 400.0, places=2)

    def test_changing_the_installments_keeps_the_total(self):
        plan = self.plan("Antena", payment_mode="installments", installments=3, total_amount=400.0)
        plan.installments = 4
        self.assertEqual((plan.total_amount, plan.amount), (400.0, 100.0))
        plan.total_amount = 90.0
        self.assertEqual(plan.amount, 22.5)

    def test_form_shows_the_installment_and_who_takes_the_cents(self):
        form = Form(self.env["service.plan"])
        form.partner_id = self.customer
        form.name = "Antena"
        form.next_due_date = date(2026, 1, 10)
        form.payment_mode = "installments"
        form.total_amount = 400.0
        form.installments = 3
        self.assertEqual(form.amount, 133.33)
        self.assertIn("installment 3 of S/\xa0133.34", form.installment_note)
        plan = form.save()
        self.assertEqual((plan.total_amount, plan.amount), (400.0, 133.33))

    def test_switching_to_installments_keeps_the_amount_entered_as_the_installment(self):
        form = Form(self.env["service.plan"])
        form.partner_id = self.customer
        form.name = "Router"
        form.amount = 60.0
        form.payment_mode = "installments"
        self.assertEqual((form.total_amount, form.amount), (120.0, 60.0), "2 installments by default")
        form.installments = 4
        self.assertEqual((form.total_amount, form.amount), (120.0, 30.0), "the total stays, the installment follows")
        form.total_amount = 240.0
        self.assertEqual(form.amount, 60.0)
        self.assertEqual(form.save().total_amount, 240.0)

    def test_plan_given_its_amount_per_installment_keeps_its_meaning(self):
        """Plans made before the total was asked for (and API clients) give the amount per
        installment: the total is that amount times the installments, and the install or update
        of the module fills it in for the plans already stored."""
        plan = self.plan("Router", 60.0, payment_mode="installments", installments=4)
        self.assertEqual((plan.total_amount, plan.amount), (240.0, 60.0))
        self.env.flush_all()
        self.env.cr.execute("UPDATE service_plan SET total_amount = NULL WHERE id = %s", [plan.id])
        self.env["service.plan"].init()
        plan.invalidate_recordset(["total_amount"])
        self.assertEqual(plan.total_amount, 240.0)
        plan.amount = 50.0  # the amount per installment written directly: the total follows
        self.assertEqual(plan.total_amount, 200.0)

    def test_copied_plans_keep_their_amounts(self):
        recurring = self.plan("Internet", 89.9)
        installments = self.plan("Antena", payment_mode="installments", installments=3, total_amount=400.0)
        self.assertEqual(recurring.copy().amount, 89.9)
        self.assertEqual((installments.copy().total_amount, installments.copy().amount), (400.0, 133.33))

    def test_total_too_small_to_split_is_refused(self):
        with self.assertRaisesRegex(ValidationError, "too small to split into 3 installments"):
            self.plan("Antena", payment_mode="installments", installments=3, total_amount=0.02)
        with self.assertRaisesRegex(ValidationError, "total to collect"):
            self.plan("Antena", payment_mode="installments", installments=3, total_amount=-5.0)


@tagged("post_install", "-at_install")
class TestLabelsInCustomerLanguage(ServicePlanCase):
    """Generated lines are labelled by whoever creates them; the customer reads them in their language."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("es_PE")
        cls.template = cls.env["dunning.template"].create(
            {"name": "Plan", "body": "@variable_plan", "company_id": cls.company.id}
        )

    def render(self, text, orders):
        return self.template._render_text(text, orders)

    def test_installment_line_in_the_customer_language(self):
        self.customer.lang = "es_PE"
        self.plan("Internet 100 Mbps", 89.9)
        self.plan("Router", payment_mode="installments", installments=4, total_amount=240.0)
        order = self.generate("2026-01-07")
        self.assertIn("Router (installment 1 of 4)", order.line_ids.mapped("name"), "kept as created")
        self.assertEqual(self.render("@variable_plan", order), "Internet 100 Mbps, Router (cuota 1 de 4)")
        self.customer_2.lang = "en_US"
        self.plan("Router", payment_mode="installments", installments=4, total_amount=240.0, partner=self.customer_2)
        other = self.generate("2026-02-07").filtered(lambda o: o.partner_id == self.customer_2)
        self.assertEqual(self.render("@variable_plan", other), "Router (installment 1 of 4)")

    def test_amount_due_line_in_the_customer_language(self):
        self.customer.lang = "es_PE"
        order = self.create_order(
            line_ids=[Command.create({"name": "Amount due", "amount": 50.0, "label_kind": "amount_due"})]
        )
        self.assertEqual(self.render("@variable_plan", order), "Monto a pagar")
        self.assertIn("Monto a pagar", self.render("@variable_detalle", order), "no concept: the lines say it")

    def test_line_without_label_kind_keeps_its_text(self):
        self.customer.lang = "es_PE"
        order = self.create_order(line_ids=[Command.create({"name": "Amount due", "amount": 50.0})])
        self.assertEqual(self.render("@variable_plan", order), "Amount due", "an old line: its text as written")

    def test_single_amount_order_says_amount_due_in_the_customer_language(self):
        self.customer.lang = "es_PE"
        order = self.create_order(75.0)
        self.assertEqual(order.line_ids.name, "Amount due")
        self.assertEqual(self.render("@variable_plan", order), "Monto a pagar")


@tagged("post_install", "-at_install")
class TestStatementWithEveryMessage(DunningCase):
    """Spec 4: each dunning message carries the customer's statement, unless the rule says not."""

    def test_new_rules_attach_the_statement(self):
        self.assertTrue(self.rule().attach_statement)
        form = Form(self.env["dunning.template"])
        self.assertTrue(form.attach_statement)
        without = self.rule("Sin estado de cuenta", attach_statement=False)
        self.assertFalse(without.attach_statement, "still a choice of each rule")


@tagged("post_install", "-at_install")
class TestShippedRule(DunningCase):
    """Spec 1: an automatic notification "según los días configurados antes del vencimiento", ready
    without a manager building a rule first."""

    def setUp(self):
        super().setUp()
        self.shipped = self.env.ref("payment_dunning.dunning_template_before_due")
        self.shipped.active = True  # DunningCase archives it for the other tests' counts

    def test_rule_ships_active_from_three_days_before_to_the_due_date(self):
        rule = self.shipped
        self.assertTrue(rule.auto_send)
        self.assertEqual((rule.days_from, rule.days_to, rule.interval_days), (-3, 0, 3))
        self.assertEqual(rule._channels(), ["email", "whatsapp"])
        self.assertTrue(rule.attach_statement)
        self.assertFalse(rule.company_id, "every company")
        data = self.env["ir.model.data"].search(
            [("module", "=", "payment_dunning"), ("name", "=", "dunning_template_before_due")]
        )
        self.assertTrue(data.noupdate, "a manager's changes survive updates")

    def test_manual_order_is_reminded_without_any_rule_built(self):
        order = self.create_order(100.0, due_date="2026-03-10")
        days = []
        for day in daily(date(2026, 3, 5), date(2026, 3, 14)):
            with freeze_time(f"{day} {MORNING}"):
                self.env["dunning.template"]._cron_dunning_run()
            order.invalidate_recordset(["notification_ids"])
            sent_today = order.notification_ids.filtered(lambda n, day=day: n.run_date == day)
            if sent_today:
                self.assertEqual(sorted(sent_today.mapped("channel")), ["email", "whatsapp"])
                days.append((day - order.due_date).days)
        self.assertEqual(days, [-3, 0])
        self.assertEqual(order.notification_ids.template_id, self.shipped)

    def test_rule_runs_only_with_the_automatic_tasks_on(self):
        order = self.create_order(100.0, due_date="2026-03-10")
        self.params.set_param("payment_dunning.automatic_tasks", False)
        with freeze_time(f"2026-03-07 {MORNING}"):
            self.env["dunning.template"]._cron_dunning_run()
        self.assertFalse(order.notification_ids)
