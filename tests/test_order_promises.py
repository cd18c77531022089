from datetime import date

from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, tagged

from .test_dunning_run import MORNING, DunningCase


@tagged("post_install", "-at_install")
class TestOrderPromises(DunningCase):
    def promise(self, orders, promised_date="2026-03-15", amount=60.0, user=None):
        with freeze_time(f"2026-03-05 {MORNING}"):
            env = self.env(user=user) if user else self.env
            return env["payment.order.promise"].create(
                {
                    "partner_id": orders[0].partner_id.id,
                    "company_id": orders[0].company_id.id,
                    "order_ids": [(6, 0, orders.ids)],
                    "promised_date": promised_date,
                    "promised_amount": amount,
                    "user_id": self.user.id,
                }
            )

    def check_on(self, day):
        with freeze_time(f"{day} {MORNING}"):
            return self.env["payment.order.promise"]._cron_check_promises()

    def reminded(self, template, order):
        order.invalidate_recordset(["notification_ids"])
        return len(order.notification_ids.filtered(lambda n: n.template_id == template))

    def setUp(self):
        super().setUp()
        self.template = self.rule(days_from=1, open_end=True, interval=1)
        self.order = self.create_order(100.0, due_date="2026-03-01")
        self.other = self.create_order(80.0, due_date="2026-03-01")

    def test_promise_pauses_the_reminders_of_its_orders_until_the_date(self):
        promise = self.promise(self.order)
        self.assertEqual(promise.balance_at_promise, 100.0)
        for day in ("2026-03-06", "2026-03-10", "2026-03-15"):
            self.run_on(day)
        self.assertEqual(self.reminded(self.template, self.order), 0, "paused up to and including the date")
        self.assertEqual(self.reminded(self.template, self.other), 3, "the customer's other order is still reminded")

    def test_kept_promise(self):
        promise = self.promise(self.order, amount=60.0)
        self.order._internal_edit()._set_balance(40.0)
        self.assertEqual(self.check_on("2026-03-15"), 0, "not before the day after the date")
        self.assertEqual(promise.state, "open")
        self.assertEqual(self.check_on("2026-03-16"), 1)
        self.assertEqual(promise.state, "kept")
        self.assertFalse(promise.activity_ids)

    def test_promise_of_closed_orders_is_kept(self):
        promise = self.promise(self.order | self.other, amount=50.0)
        (self.order | self.other)._internal_edit()._set_balance(0.0)
        self.check_on("2026-03-16")
        self.assertEqual(promise.state, "kept")

    def test_broken_promise_schedules_an_activity_and_reminders_resume(self):
        promise = self.promise(self.order, amount=60.0)
        self.order._internal_edit()._set_balance(70.0)  # paid 30 of the 60 promised
        self.assertEqual(self.check_on("2026-03-16"), 1)
        self.assertEqual(promise.state, "broken")
        self.assertEqual(len(promise.activity_ids), 1)
        self.assertEqual(promise.activity_ids.user_id, self.user)
        self.assertEqual(promise.activity_ids.activity_type_id, self.env.ref("mail.mail_activity_data_todo"))
        self.run_on("2026-03-16")
        self.assertEqual(self.reminded(self.template, self.order), 1, "reminders resume the day after")
        # run twice: nothing more happens
        self.assertEqual(self.check_on("2026-03-16"), 0)
        self.assertEqual(self.check_on("2026-03-17"), 0)
        self.assertEqual(promise.state, "broken")
        self.assertEqual(len(promise.activity_ids), 1)

    def test_cancelled_promise_resumes_reminders(self):
        promise = self.promise(self.order, user=self.user)
        promise.with_user(self.user).action_cancel()
        self.assertEqual(promise.state, "cancelled")
        self.run_on("2026-03-06")
        self.assertEqual(self.reminded(self.template, self.order), 1)
        self.assertEqual(self.check_on("2026-03-16"), 0)

    def test_only_a_manager_or_the_creator_cancels(self):
        promise = self.promise(self.order, user=self.manager)
        with self.assertRaises(AccessError):
            promise.with_user(self.user).action_cancel()
        promise.with_user(self.manager).action_cancel()
        self.assertEqual(promise.state, "cancelled")

    def test_amounts_and_state_cannot_be_written(self):
        promise = self.promise(self.order)
        for vals in ({"state": "kept"}, {"promised_amount": 1.0}, {"balance_at_promise": 1000.0}):
            with self.assertRaises(UserError):
                promise.with_user(self.user).write(vals)
        promise.with_user(self.user).write({"note": "Llamar el lunes"})
        self.assertEqual(promise.state, "open")

    def test_validation_errors(self):
        with self.assertRaises(ValidationError):
            self.promise(self.order, promised_date="2026-03-04")
        with self.assertRaises(ValidationError):
            self.promise(self.order, amount=0.0)
        with self.assertRaises(ValidationError):
            self.promise(self.order, amount=-5.0)
        with self.assertRaises(ValidationError):
            self.promise(self.order | self.other, amount=180.01)
        foreign = self.create_order(50.0, due_date="2026-03-01", partner=self.customer_2)
        with self.assertRaises(ValidationError):
            self.promise(self.order | foreign, amount=10.0)
        # today is allowed, and the whole balance
        self.assertEqual(self.promise(self.order | self.other, "2026-03-05", 180.0).state, "open")

    def test_wizard_from_the_order_and_from_the_customer(self):
        with freeze_time(f"2026-03-05 {MORNING}"):
            env = self.env(user=self.user)
            context = {"active_model": "payment.order", "active_id": self.order.id, "active_ids": self.order.ids}
            form = Form(env["payment.order.promise.wizard"].with_context(**context))
            self.assertEqual(form.total_balance, 100.0)
            self.assertEqual(form.promised_date, date(2026, 3, 5))
            form.promised_date = date(2026, 3, 20)
            form.promised_amount = 40.0
            action = form.save().action_confirm()
            promise = env["payment.order.promise"].browse(action["res_id"])
            self.assertEqual(promise.order_ids, self.order)
            self.assertEqual(promise.promised_amount, 40.0)

            context = {"active_model": "res.partner", "active_id": self.customer.id}
            form = Form(env["payment.order.promise.wizard"].with_context(**context))
            self.assertEqual(form.total_balance, 180.0)
            form.promised_date = date(2026, 3, 1)
            with self.assertRaises(ValidationError):
                form.save().action_confirm()

    def test_automatic_tasks_switch_the_promise_job(self):
        cron = self.env.ref("payment_dunning.cron_payment_order_promise_check")
        self.assertFalse(cron.active, "off until Settings turns the automatic tasks on")
        settings = Form(self.env["res.config.settings"])
        settings.dunning_automatic_tasks = True
        settings.save().execute()
        self.assertTrue(cron.active)

    def test_promises_of_another_company_are_not_visible(self):
        promise = self.promise(self.order)
        promises = (
            self.env["payment.order.promise"]
            .with_user(self.user_company_2)
            .with_context(allowed_company_ids=self.company_2.ids)
        )
        self.assertFalse(promises.search([("id", "=", promise.id)]))
        self.assertEqual(self.env["payment.order.promise"].with_user(self.user).search([]), promise)
