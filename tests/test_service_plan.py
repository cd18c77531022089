from datetime import date, datetime
from unittest.mock import patch

from freezegun import freeze_time
from psycopg2 import IntegrityError

from odoo import fields
from odoo.addons.payment_dunning.models.service_plan import GENERATION_LOCK_KEY, ServicePlan
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import PaymentDunningCase, stored_values

# Mid-afternoon UTC is morning in Lima: "today" is the same date for the company and the server.
MORNING = "15:00:00"


class ServicePlanCase(PaymentDunningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.params = cls.env["ir.config_parameter"].sudo()
        cls.params.set_param("payment_dunning.days_before_due", 3)
        cls.params.set_param("payment_dunning.notifications_enabled", False)

    def plan(self, name="Internet 100 Mbps", amount=89.9, next_due_date="2026-01-10", partner=None, **values):
        return self.env["service.plan"].create(
            {
                "partner_id": (partner or self.customer).id,
                "name": name,
                "amount": amount,
                "next_due_date": next_due_date,
                **values,
            }
        )

    def generate(self, day, companies=None, **kwargs):
        """Run the generation as the job would on the morning of ``day`` (company time)."""
        with freeze_time(f"{day} {MORNING}"):
            return self.env["service.plan"]._generate_orders(companies or self.company, **kwargs)

    def generate_monthly(self, *days):
        orders = self.env["payment.order"]
        for day in days:
            orders |= self.generate(day)
        return orders

    def billed_dates(self, plan):
        return sorted(plan.line_ids.mapped("plan_due_date"))


@tagged("post_install", "-at_install")
class TestPaymentModes(ServicePlanCase):
    """Spec 2: recurring, one payment, X installments, and the states they go through."""

    def test_recurring_without_dates_is_billed_every_period(self):
        plan = self.plan()
        orders = self.generate_monthly("2026-01-07", "2026-02-07", "2026-03-07")
        self.assertEqual(len(orders), 3)
        self.assertEqual(orders.mapped("due_date"), [date(2026, 1, 10), date(2026, 2, 10), date(2026, 3, 10)])
        for order in orders:
            self.assertEqual(order.origin, "plan")
            self.assertEqual(order.line_ids.plan_id, plan)
            self.assertEqual(order.line_ids.name, "Internet 100 Mbps")
            self.assertEqual(order.amount_total, 89.9)
            self.assertEqual(order.balance, 89.9)
            self.assertEqual(order.state, "pending")
        self.assertEqual(plan.next_due_date, date(2026, 4, 10))
        self.assertEqual(plan.installments_billed, 3)
        self.assertEqual(plan.state, "active", "a recurring plan is always active")

    def test_single_payment_appears_once_then_never(self):
        plan = self.plan("Instalación", 150.0, payment_mode="single")
        self.assertEqual(plan.state, "to_collect")
        orders = self.generate_monthly("2026-01-07", "2026-02-07", "2026-03-07")
        self.assertEqual(len(orders), 1)
        self.assertEqual(orders.due_date, date(2026, 1, 10))
        self.assertTrue(plan.billing_done)
        self.assertEqual(plan.state, "to_collect", "billed but not paid yet")
        orders.action_pay()
        self.assertEqual(plan.state, "paid")
        self.assertFalse(self.generate("2026-04-07"), "a paid plan bills nothing more")

    def test_installments_appear_on_the_next_x_orders(self):
        plan = self.plan("Router", 60.0, payment_mode="installments", installments=4)
        self.assertEqual(plan.total_amount, 240.0)
        orders = self.generate_monthly(*(f"2026-{month:02d}-07" for month in range(1, 8)))
        self.assertEqual(len(orders), 4, "4 installments: 4 orders, then nothing")
        self.assertEqual(
            orders.sorted("due_date").line_ids.mapped("name"),
            [f"Router (installment {number} of 4)" for number in range(1, 5)],
        )
        self.assertEqual(plan.installments_billed, 4)
        self.assertEqual(plan.state, "to_collect")
        orders.sorted("due_date")[:3].action_pay()
        self.assertEqual(plan.state, "to_collect", "one installment is still unpaid")
        orders.sorted("due_date")[3].action_pay()
        self.assertEqual(plan.state, "paid")

    def test_recurring_plan_stays_active_whatever_is_paid(self):
        plan = self.plan()
        self.generate("2026-01-07").action_pay()
        self.assertEqual(plan.state, "active")

    def test_cancelled_order_gives_its_installment_back(self):
        plan = self.plan("Router", 60.0, payment_mode="installments", installments=2)
        self.generate("2026-01-07").action_cancel()
        self.assertEqual(plan.installments_billed, 0)
        second = self.generate("2026-02-07")
        self.assertEqual(second.line_ids.name, "Router (installment 1 of 2)")
        third = self.generate("2026-03-07")
        self.assertEqual(third.line_ids.name, "Router (installment 2 of 2)")
        self.assertFalse(self.generate("2026-04-07"))
        (second | third).action_pay()
        self.assertEqual(plan.state, "paid")

    def test_internet_plus_router_in_four_installments(self):
        """The story of the issue: monthly orders with both lines, then only the plan."""
        internet = self.plan("Internet 100 Mbps", 89.9, "2026-01-10")
        router = self.plan("Router Wi-Fi 6", 60.0, "2026-01-10", payment_mode="installments", installments=4)
        orders = self.env["payment.order"]
        for month in range(1, 7):
            order = self.generate(f"2026-{month:02d}-07")
            self.assertEqual(len(order), 1, "one order per customer and due date")
            order.action_pay()
            orders |= order
        orders = orders.sorted("due_date")
        for order in orders[:4]:
            self.assertEqual(order.line_ids.plan_id, internet | router)
            self.assertEqual(order.amount_total, 149.9)
        for order in orders[4:]:
            self.assertEqual(order.line_ids.plan_id, internet)
            self.assertEqual(order.amount_total, 89.9)
        self.assertEqual(internet.state, "active")
        self.assertEqual(router.state, "paid")
        self.assertEqual(router.order_count, 4)


@tagged("post_install", "-at_install")
class TestPlanWindow(ServicePlanCase):
    """Spec 2: start and end dates win over the payment mode."""

    def test_start_date_only(self):
        plan = self.plan(start_date="2026-03-01")
        self.generate_monthly("2026-01-07", "2026-02-07", "2026-03-07", "2026-04-07")
        self.assertEqual(self.billed_dates(plan), [date(2026, 3, 10), date(2026, 4, 10)])

    def test_end_date_only(self):
        plan = self.plan(end_date="2026-02-28")
        self.generate_monthly("2026-01-07", "2026-02-07", "2026-03-07", "2026-04-07")
        self.assertEqual(self.billed_dates(plan), [date(2026, 1, 10), date(2026, 2, 10)])
        self.assertTrue(plan.billing_done)
        self.assertEqual(plan.state, "active", "recurring stays active")

    def test_start_and_end_dates(self):
        plan = self.plan(start_date="2026-02-01", end_date="2026-03-31")
        self.generate_monthly("2026-01-07", "2026-02-07", "2026-03-07", "2026-04-07")
        self.assertEqual(self.billed_dates(plan), [date(2026, 2, 10), date(2026, 3, 10)])

    def test_window_wins_over_installments(self):
        """Spec 2's example: 4 installments, window 1 April-30 June, monthly from April: 3 lines."""
        plan = self.plan(
            "Equipo", 50.0, "2026-04-05", payment_mode="installments", installments=4,
            start_date="2026-04-01", end_date="2026-06-30",
        )  # fmt: skip
        with freeze_time(f"2026-03-20 {MORNING}"):  # the warning counts the orders still to be created
            self.assertIn("only 3 of the 4", plan.window_warning)
        orders = self.generate_monthly(*(f"2026-{month:02d}-02" for month in range(4, 10)))
        self.assertEqual(len(orders), 3)
        self.assertEqual(self.billed_dates(plan), [date(2026, 4, 5), date(2026, 5, 5), date(2026, 6, 5)])
        self.assertTrue(plan.billing_done, "past the end date nothing more is billed")
        self.assertEqual(plan.state, "to_collect")
        orders.action_pay()
        self.assertEqual(plan.state, "paid")

    @freeze_time(f"2026-01-01 {MORNING}")
    def test_no_warning_when_the_window_holds_every_installment(self):
        plan = self.plan(payment_mode="installments", installments=3, start_date="2026-01-01", end_date="2026-03-31")
        self.assertFalse(plan.window_warning)
        self.assertFalse(self.plan().window_warning)

    def test_end_before_start_is_refused(self):
        with self.assertRaisesRegex(ValidationError, "must come before its end date"):
            self.plan(start_date="2026-05-01", end_date="2026-04-01")


@tagged("post_install", "-at_install")
class TestGeneration(ServicePlanCase):
    def test_days_before_due_date_boundary(self):
        self.plan(next_due_date="2026-01-10")
        self.assertFalse(self.generate("2026-01-06"), "4 days before: not yet")
        self.assertEqual(len(self.generate("2026-01-07")), 1, "3 days before: generated")
        self.params.set_param("payment_dunning.days_before_due", 0)
        self.plan("Static IP", 20.0, next_due_date="2026-01-12")
        self.assertFalse(self.generate("2026-01-11"))
        self.assertEqual(self.generate("2026-01-12").line_ids.name, "Static IP")

    def test_company_day_not_server_day(self):
        """At 21:00 in Lima it is already the next day in UTC; Lima's own day decides."""
        self.plan(next_due_date="2026-01-10")
        with freeze_time("2026-01-07 02:00:00"):  # 21:00 on 6 January in Lima
            self.assertFalse(self.env["service.plan"]._generate_orders(self.company))
        with freeze_time("2026-01-07 06:00:00"):  # 01:00 on 7 January in Lima
            self.assertTrue(self.env["service.plan"]._generate_orders(self.company))

    def test_month_end_due_dates_do_not_drift(self):
        plan = self.plan(next_due_date="2026-01-31")
        self.generate_monthly("2026-01-28", "2026-02-25", "2026-03-28", "2026-04-27")
        self.assertEqual(
            self.billed_dates(plan), [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]
        )
        self.assertEqual(plan.next_due_date, date(2026, 5, 31))

    def test_quarterly_period(self):
        plan = self.plan(period_months=3)
        self.generate_monthly("2026-01-07", "2026-02-07", "2026-03-07", "2026-04-07")
        self.assertEqual(self.billed_dates(plan), [date(2026, 1, 10), date(2026, 4, 10)])

    def test_plans_of_one_customer_share_one_order(self):
        internet = self.plan("Internet", 89.9)
        tv = self.plan("TV", 30.0)
        other_day = self.plan("Soporte", 10.0, next_due_date="2026-01-09")
        other_customer = self.plan("Internet", 70.0, partner=self.customer_2)
        orders = self.generate("2026-01-07")
        self.assertEqual(len(orders), 3, "one order per customer and due date")
        grouped = orders.filtered(lambda o: o.partner_id == self.customer and o.due_date == date(2026, 1, 10))
        self.assertEqual(grouped.line_ids.plan_id, internet | tv)
        self.assertEqual(grouped.amount_total, 119.9)
        self.assertEqual(grouped.concept, "Internet, TV")
        self.assertEqual(other_day.line_ids.order_id.due_date, date(2026, 1, 9))
        self.assertEqual(other_customer.line_ids.order_id.partner_id, self.customer_2)

    def test_generated_order_matches_a_created_one(self):
        """The set-based insert of the job stores what create() would, field by field."""
        self.plan("Internet", 89.9)
        self.plan("Router", 60.0, payment_mode="installments", installments=4)
        generated = self.generate("2026-01-07")
        label_fields = ["name", "amount", "label_kind", "installment_number", "installment_count"]
        lines = [fields.Command.create({fname: line[fname] for fname in label_fields}) for line in generated.line_ids]
        created = self.orm_created_order(
            {
                "partner_id": self.customer.id,
                "due_date": generated.due_date,
                "concept": generated.concept,
                "origin": "plan",
                "line_ids": lines,
            }
        )
        self.env.invalidate_all()

        skip = {"id", "name", "create_date", "write_date", "order_id", "plan_id", "plan_due_date"}
        self.assertEqual(stored_values(generated, skip), stored_values(created, skip))
        self.assertEqual(stored_values(generated.line_ids, skip), stored_values(created.line_ids, skip))
        self.assertEqual(generated.name[:8], created.name[:8])
        self.assertEqual(int(created.name[-5:]), int(generated.name[-5:]) + 1, "one sequence for both ways")

    def test_second_run_the_same_day_creates_nothing(self):
        plan = self.plan()
        first = self.generate("2026-01-07")
        self.assertEqual(len(first), 1)
        self.assertFalse(self.generate("2026-01-07"))
        self.assertFalse(self.generate("2026-01-08"))
        self.assertEqual(len(plan.line_ids), 1)

    def test_a_period_is_never_billed_twice(self):
        """Even if a plan is moved back by hand, its period already billed is not billed again."""
        plan = self.plan()
        self.generate("2026-01-07")
        plan.next_due_date = "2026-01-10"
        self.assertFalse(self.generate("2026-01-07"))
        self.assertEqual(len(plan.line_ids), 1)
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"):
            self.env["payment.order"].create(
                {
                    "partner_id": self.customer.id,
                    "due_date": "2026-01-10",
                    "line_ids": [
                        fields.Command.create(
                            {"name": "dup", "amount": 1.0, "plan_id": plan.id, "plan_due_date": "2026-01-10"}
                        )
                    ],
                }
            )
            self.env.flush_all()

    def test_plan_created_late_catches_up_only_the_current_period(self):
        plan = self.plan(next_due_date="2026-01-10")
        orders = self.generate("2026-04-20")
        self.assertEqual(orders.due_date, date(2026, 4, 10), "January to March are not billed")
        self.assertEqual(plan.next_due_date, date(2026, 5, 10))
        self.assertIn("only the current period", plan._fields["next_due_date"].help)

    def test_archived_plan_is_not_billed(self):
        self.plan(active=False)
        self.assertFalse(self.generate("2026-01-07"))

    def test_each_company_bills_with_its_own_currency(self):
        self.plan()
        spanish_customer = self.env["res.partner"].create({"name": "Telefónica Hogar", "company_id": self.company_2.id})
        plan_2 = (
            self.env["service.plan"]
            .with_company(self.company_2)
            .create(
                {
                    "partner_id": spanish_customer.id,
                    "name": "Fibra 600 Mb",
                    "amount": 35.0,
                    "next_due_date": "2026-01-10",
                    "company_id": self.company_2.id,
                }
            )
        )
        orders = self.generate("2026-01-07", companies=self.company | self.company_2)
        self.assertEqual(len(orders), 2)
        order_2 = plan_2.line_ids.order_id
        self.assertEqual(order_2.company_id, self.company_2)
        self.assertEqual(order_2.currency_id, self.env.ref("base.EUR"))
        self.assertEqual(order_2.name.split("/")[0], "OP")

    def test_crash_between_batches_loses_nothing_and_duplicates_nothing(self):
        """Batch 1 is committed, the worker dies in batch 2: the next run bills exactly the rest."""
        customers = [self.customer, self.customer_2] + [
            self.env["res.partner"].create({"name": f"Cliente {index}"}) for index in range(3)
        ]
        for customer in customers:
            self.plan(partner=customer)
            self.plan("TV", 30.0, partner=customer)
        cr = self.env.cr
        cr.execute("SAVEPOINT generation_committed")
        progress_calls = []

        def fake_commit():
            cr.execute("RELEASE SAVEPOINT generation_committed")
            cr.execute("SAVEPOINT generation_committed")

        def dies_in_second_batch(cron_self, done=None, remaining=None, deactivate=False):
            progress_calls.append(done)
            if len(progress_calls) == 2:
                raise KeyboardInterrupt("worker killed")

        killed = False
        with (
            patch.object(cr, "commit", fake_commit),
            patch.object(type(self.env["ir.cron"]), "_notify_progress", dies_in_second_batch),
        ):
            try:
                self.generate("2026-01-07", commit=True, batch_size=2)
            except KeyboardInterrupt:  # not assertRaises: its savepoint would not survive our "commits"
                killed = True
        self.assertTrue(killed)
        cr.execute("ROLLBACK TO SAVEPOINT generation_committed")
        self.env.invalidate_all(flush=False)
        self.env.transaction.clear()

        plans = self.env["service.plan"].search([("partner_id", "in", [c.id for c in customers])])
        self.assertEqual(len(plans.line_ids), 4, "the first batch (2 customers, 4 plans) was kept")
        rest = self.generate("2026-01-07")
        self.assertEqual(len(rest), 3, "the next run bills the 3 customers the crash lost")
        self.assertEqual(len(plans.line_ids), 10)
        self.assertEqual(len(plans.line_ids.order_id), 5, "one order per customer, none twice")

    def test_one_bad_customer_is_skipped_without_blocking_the_rest(self):
        self.plan()
        bad = self.plan(partner=self.customer_2)
        original = ServicePlan._create_orders

        def fails_for_one_customer(plans_self, groups):
            if any(key[0] == self.customer_2.id for key in groups):
                raise ValueError("broken customer")
            return original(plans_self, groups)

        with (
            patch.object(ServicePlan, "_create_orders", fails_for_one_customer),
            self.assertLogs("odoo.addons.payment_dunning.models.service_plan", "ERROR") as logs,
        ):
            orders = self.generate("2026-01-07")
        self.assertEqual(orders.partner_id, self.customer)
        self.assertIn("Could not generate the payment orders of customer", logs.output[0])
        self.assertFalse(bad.line_ids)
        self.assertEqual(bad.next_due_date, date(2026, 1, 10), "the skipped plan waits for the next run")
        self.assertEqual(self.generate("2026-01-07").partner_id, self.customer_2)

    def test_customer_held_by_another_worker_is_left_to_it(self):
        """A second connection holds one customer, as a concurrent run would: we bill the others."""
        self.plan()
        self.plan(partner=self.customer_2)
        with self.registry.cursor() as other_worker:
            other_worker.execute("SELECT pg_advisory_xact_lock(%s, %s)", (GENERATION_LOCK_KEY, self.customer.id))
            orders = self.generate("2026-01-07")
            self.assertEqual(orders.partner_id, self.customer_2)
            other_worker.rollback()
        self.assertEqual(self.generate("2026-01-07").partner_id, self.customer)

    def test_generated_orders_are_notified_when_settings_say_so(self):
        excluded = self.env["res.partner"].create({"name": "No molestar", "dunning_excluded": True})
        self.plan()
        self.plan(partner=excluded)
        self.assertFalse(self.generate("2026-01-07").notification_ids, "notifications are off")
        self.params.set_param("payment_dunning.notifications_enabled", True)
        self.plan("TV", 30.0, next_due_date="2026-02-10")
        self.plan("TV", 30.0, next_due_date="2026-02-10", partner=excluded)
        orders = self.generate("2026-02-07")
        notified = orders.filtered("notification_ids")
        self.assertEqual(notified.partner_id, self.customer)
        self.assertEqual(sorted(notified.notification_ids.mapped("channel")), ["email", "whatsapp"])
        self.assertEqual(set(notified.notification_ids.mapped("state")), {"queued"}, "sent by the queue job")

    def test_automatic_tasks_off_generates_nothing(self):
        self.plan()
        self.params.set_param("payment_dunning.automatic_tasks", False)
        with freeze_time(f"2026-01-07 {MORNING}"):
            self.assertFalse(self.env["service.plan"]._cron_generate_orders())
        self.params.set_param("payment_dunning.automatic_tasks", True)
        with freeze_time(f"2026-01-07 {MORNING}"):
            orders = self.env["service.plan"]._cron_generate_orders()
        self.assertEqual(orders.partner_id, self.customer)


@tagged("post_install", "-at_install")
class TestPlanManagement(ServicePlanCase):
    def test_generate_now_previews_then_runs_the_same_job(self):
        self.plan()
        self.plan("TV", 30.0)
        self.plan(partner=self.customer_2)
        self.plan("Later", 5.0, next_due_date="2026-03-01")
        with freeze_time(f"2026-01-07 {MORNING}"):
            wizard = self.env["service.plan.generate"].with_user(self.manager).create({})
            self.assertEqual((wizard.order_count, wizard.plan_count, wizard.customer_count), (2, 3, 2))
            action = wizard.action_generate()
            self.assertEqual(len(action["domain"][0][2]), 2)
            wizard = self.env["service.plan.generate"].with_user(self.manager).create({})
            self.assertEqual(wizard.order_count, 0, "nothing left to bill today")

    def test_only_managers_generate_now(self):
        with self.assertRaises(AccessError):
            self.env["service.plan.generate"].with_user(self.user).create({})

    def test_user_manages_plans_of_own_company_only(self):
        plan = (
            self.env["service.plan"]
            .with_user(self.user)
            .create({"partner_id": self.customer.id, "name": "Internet", "amount": 50.0, "next_due_date": "2026-01-10"})
        )
        self.assertEqual(plan.company_id, self.company)
        with self.assertRaises(AccessError):
            plan.with_user(self.user_company_2).read(["name"])
        with self.assertRaises(AccessError):
            plan.with_user(self.user).unlink()

    def test_billed_plan_cannot_be_deleted(self):
        unbilled = self.plan("Nunca facturado")
        unbilled.unlink()
        plan = self.plan()
        self.generate("2026-01-07")
        with self.assertRaises(UserError):
            plan.unlink()
        plan.action_archive()
        self.assertFalse(plan.active)

    def test_plan_values_are_checked(self):
        with self.assertRaisesRegex(ValidationError, "greater than zero"):
            self.plan(amount=0.0)
        with self.assertRaisesRegex(ValidationError, "between 1 and 120 months"):
            self.plan(period_months=0)
        with self.assertRaisesRegex(ValidationError, "at least one installment"):
            self.plan(payment_mode="installments", installments=0)

    def test_partner_lists_its_plans(self):
        plan = self.plan()
        self.assertEqual(self.customer.service_plan_ids, plan)
        self.assertEqual(self.customer.service_plan_count, 1)
        action = self.customer.action_view_service_plans()
        self.assertEqual(self.env["service.plan"].search(action["domain"]), plan)

    def test_orders_button_opens_the_orders_of_the_plan(self):
        plan = self.plan()
        order = self.generate("2026-01-07")
        action = plan.action_view_orders()
        self.assertEqual(self.env["payment.order"].search(action["domain"]), order)

    def test_product_fills_name_and_amount(self):
        product = self.env["product.product"].create({"name": "Fibra 300", "list_price": 120.0})
        form_plan = self.env["service.plan"].new({"partner_id": self.customer.id, "product_id": product.id})
        form_plan._onchange_product_id()
        self.assertEqual((form_plan.name, form_plan.amount), ("Fibra 300", 120.0))

    def test_saving_the_hour_reschedules_the_job(self):
        cron = self.env.ref("payment_dunning.cron_service_plan_generate_orders")
        with freeze_time("2026-11-23 10:00:00"):  # 05:00 in Lima
            settings = self.env["res.config.settings"].create(
                {"dunning_automatic_tasks": True, "dunning_generation_hour": 7.5}
            )
            settings.execute()
        self.assertTrue(cron.active)
        self.assertEqual(cron.nextcall, datetime(2026, 11, 23, 12, 30), "07:30 in Lima is 12:30 UTC")
        with freeze_time("2026-11-23 13:00:00"):  # 08:00 in Lima: today's run time has passed
            settings = self.env["res.config.settings"].create(
                {"dunning_automatic_tasks": True, "dunning_generation_hour": 6.0}
            )
            settings.execute()
        self.assertEqual(cron.nextcall, datetime(2026, 11, 24, 11, 0))
