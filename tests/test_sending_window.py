"""When reminders go out: the collections timezone, the sending window, the daily hours, send now,
Test connection, the Communications filters and the composer's overrides."""

from datetime import date
from unittest.mock import patch

from freezegun import freeze_time

import odoo
from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, tagged

from ..tools import collection
from .common import LocalGatewayMixin, PaymentDunningCase, start_smtp_sink

SECRET = "sk-window-51"
# Lima is UTC-5 all year: 15:00 UTC is 10:00 in Lima. 2026-11-23 is a Monday.
MONDAY_10_LIMA = "2026-11-23 15:00:00"
MONDAY_21_LIMA = "2026-11-24 02:00:00"
TUESDAY_08_LIMA = "2026-11-24 13:00:00"
SUNDAY_10_LIMA = "2026-11-22 15:00:00"


def utc(text):
    return fields.Datetime.to_datetime(text)


class WindowCase(LocalGatewayMixin, PaymentDunningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_gateway()
        cls.sink, cls.mail_server = start_smtp_sink(cls)
        cls.connector = cls.env["qrapi.connector"].create(
            {"name": "Local gateway", "url": cls.gateway.url, "api_key": SECRET, "rate_limit": 0, "retries": 2}
        )
        cls.company.email = "cobranzas@lima.example.com"
        cls.template = cls.env.ref("payment_dunning.dunning_template_default")
        cls.queue = cls.env["payment.order.notification"]
        cls.send_cron = cls.env.ref("payment_dunning.cron_payment_order_send_queue")

    def setUp(self):
        super().setUp()
        self.gateway.requests.clear()
        self.gateway.script.clear()
        self.gateway.api_key = None
        self.sink.messages.clear()
        # Odoo skips the SMTP conversation in test mode; these tests check what a real server receives
        patcher = patch.object(odoo.modules.module, "current_test", None)
        patcher.start()
        self.addCleanup(patcher.stop)

    def queued_whatsapp(self, company=None):
        order = self.create_order(company=company)
        return self.queue._queue(self.template, order, channels=["whatsapp"])

    def run_queue(self, when):
        with freeze_time(when):
            return self.queue._cron_send_queue()

    def triggers_at(self, when):
        return self.env["ir.cron.trigger"].search([("cron_id", "=", self.send_cron.id), ("call_at", "=", utc(when))])


@tagged("post_install", "-at_install")
class TestCollectionsTimezone(WindowCase):
    def test_timezone_defaults_from_the_country(self):
        self.assertEqual(self.company.collection_tz, "America/Lima")
        self.assertEqual(self.company_2.collection_tz, "Europe/Madrid")
        chile = self.env["res.company"].create({"name": "Cobranzas Santiago", "country_id": self.env.ref("base.cl").id})
        self.assertEqual(chile.collection_tz, "America/Santiago")
        chile.country_id = self.env.ref("base.pe")
        self.assertEqual(chile.collection_tz, "America/Santiago", "a chosen timezone stays")

    def test_three_in_the_morning_utc_is_still_yesterday_in_lima(self):
        order = self.create_order(due_date="2026-11-23")
        orders = self.env["payment.order"]
        with freeze_time("2026-11-24 03:00:00"):
            self.assertEqual(collection.company_today(self.company), date(2026, 11, 23))
            self.assertEqual(collection.company_today(self.company_2), date(2026, 11, 24))
            orders._cron_mark_overdue()
            order.invalidate_recordset(["state"])
            self.assertEqual(order.state, "pending", "22:00 in Lima: the due date is today, not past")
        with freeze_time("2026-11-24 05:30:00"):
            orders._cron_mark_overdue()
            order.invalidate_recordset(["state"])
            self.assertEqual(order.state, "overdue", "00:30 in Lima: the due date has passed")

    def test_the_collections_timezone_wins_over_the_partner_timezone(self):
        self.assertEqual(self.company.partner_id.tz, "America/Lima")
        self.company.collection_tz = "Asia/Tokyo"
        with freeze_time("2026-11-23 16:00:00"):  # 01:00 on the 24th in Tokyo, 11:00 on the 23rd in Lima
            self.assertEqual(collection.company_today(self.company), date(2026, 11, 24))
            self.assertEqual(self.queued_whatsapp().run_date, date(2026, 11, 24), "the queue's day too")

    def test_dunning_run_uses_the_company_day(self):
        self.env["ir.config_parameter"].sudo().set_param("payment_dunning.automatic_tasks", True)
        self.env["ir.config_parameter"].sudo().set_param("payment_dunning.notifications_enabled", True)
        rule = self.env["dunning.template"].create(
            {
                "name": "Primer aviso",
                "auto_send": True,
                "days_from": 1,
                "days_to": 30,
                "interval_days": 1,
                "channel_email": False,
                "channel_whatsapp": True,
                "body": "Hola @variable_nombre",
                "company_id": self.company.id,
            }
        )
        order = self.create_order(due_date="2026-11-22")
        order._internal_edit().write({"state": "overdue"})
        with freeze_time("2026-11-23 04:00:00"):  # 23:00 on the 22nd in Lima: not one day overdue yet
            self.env["dunning.template"]._cron_dunning_run()
            self.assertFalse(order.notification_ids.filtered(lambda line: line.template_id == rule))
        with freeze_time("2026-11-23 13:00:00"):
            self.env["dunning.template"]._cron_dunning_run()
            line = order.notification_ids.filtered(lambda line: line.template_id == rule)
            self.assertEqual(line.run_date, date(2026, 11, 23))


@tagged("post_install", "-at_install")
class TestSendingWindow(WindowCase):
    def test_inside_the_window_the_queue_sends(self):
        line = self.queued_whatsapp()
        self.assertEqual(self.run_queue(MONDAY_10_LIMA), 1)
        self.assertEqual(line.state, "sent")
        self.assertEqual(len(self.gateway.requests), 1)

    def test_outside_the_window_messages_wait_for_its_opening(self):
        line = self.queued_whatsapp()
        self.assertEqual(self.run_queue(MONDAY_21_LIMA), 0)
        self.assertEqual((line.state, line.attempts), ("queued", 0), "no attempt counted")
        self.assertFalse(self.gateway.requests)
        self.assertTrue(self.triggers_at(TUESDAY_08_LIMA), "the queue is called when the window opens")
        self.run_queue("2026-11-24 03:00:00")
        self.assertEqual(len(self.triggers_at(TUESDAY_08_LIMA)), 1, "asked once, however many calls wait")
        self.run_queue("2026-11-24 12:59:00")
        self.assertEqual(line.state, "queued")
        self.run_queue(TUESDAY_08_LIMA)
        self.assertEqual((line.state, line.attempts), ("sent", 1))

    def test_weekday_off(self):
        line = self.queued_whatsapp()
        self.run_queue(SUNDAY_10_LIMA)
        self.assertEqual(line.state, "queued", "Sunday is off by default")
        self.assertTrue(self.triggers_at("2026-11-23 13:00:00"), "Monday 08:00 in Lima")
        self.company.dunning_send_sun = True
        self.run_queue(SUNDAY_10_LIMA)
        self.assertEqual(line.state, "sent")

    def test_holiday(self):
        self.env["payment.dunning.holiday"].create(
            {"name": "Fiesta", "date": "2026-11-23", "company_id": self.company_2.id}
        )
        holiday = self.env["payment.dunning.holiday"].create({"name": "Fiesta", "date": "2026-11-23"})
        self.assertEqual(holiday.company_id, self.company)
        line = self.queued_whatsapp()
        self.run_queue(MONDAY_10_LIMA)
        self.assertEqual(line.state, "queued", "a holiday of the company")
        self.assertTrue(self.triggers_at(TUESDAY_08_LIMA))
        holiday.unlink()
        self.run_queue(MONDAY_10_LIMA)
        self.assertEqual(line.state, "sent", "the other company's holiday holds nothing here")

    def test_each_company_in_its_own_timezone(self):
        lima = self.queued_whatsapp()
        madrid = self.queued_whatsapp(company=self.company_2)
        self.run_queue("2026-11-23 08:00:00")  # 03:00 in Lima, 09:00 in Madrid
        self.assertEqual((lima.state, madrid.state), ("queued", "sent"))
        self.assertEqual(self.queue._due_count(), 1, "the held line is still due, for later")

    def test_retries_respect_the_window(self):
        line = self.queued_whatsapp()
        self.gateway.script.append((503, {"error": "maintenance"}))
        self.run_queue("2026-11-24 00:50:00")  # 19:50 in Lima
        self.assertEqual((line.state, line.attempts, line.failure_type), ("queued", 1, "gateway_error"))
        self.run_queue("2026-11-24 01:01:00")  # 20:01: due again, but the window has closed
        self.assertEqual((line.state, line.attempts), ("queued", 1))
        self.assertEqual(len(self.gateway.requests), 1)
        self.run_queue(TUESDAY_08_LIMA)
        self.assertEqual((line.state, line.attempts), ("sent", 2))

    def test_window_is_validated(self):
        # each on its own company: a refused write leaves its values in the cache
        companies = self.env["res.company"].create([{"name": f"Cobranzas {index}"} for index in range(3)])
        with self.assertRaisesRegex(ValidationError, "start before it ends"):
            companies[0].write({"dunning_window_start": 20.0, "dunning_window_end": 8.0})
        with self.assertRaisesRegex(ValidationError, "at least one weekday"):
            companies[1].write({f"dunning_send_{day}": False for day in ("mon", "tue", "wed", "thu", "fri", "sat")})
        with self.assertRaisesRegex(ValidationError, "between 00:00 and 24:00"):
            companies[2].dunning_window_end = 25.0
        with self.assertRaisesRegex(ValidationError, "start before it ends"):
            self.env["res.config.settings"].create({"dunning_window_start": 9.0, "dunning_window_end": 9.0})
        with self.assertRaisesRegex(ValidationError, "at least one weekday"):
            self.env["payment.dunning.settings"].with_user(self.manager).create(
                {f"dunning_send_{day}": False for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
            )
        with self.assertRaisesRegex(ValidationError, "dunning run hour"):
            self.env["res.config.settings"].create({"dunning_run_hour": 24.0})


@tagged("post_install", "-at_install")
class TestSendNow(WindowCase):
    def test_notify_sends_at_night_with_the_automatic_tasks_off(self):
        self.assertFalse(self.send_cron.active)
        order = self.create_order()
        with freeze_time("2026-11-22 08:00:00"):  # Sunday, 03:00 in Lima
            result = order.with_user(self.user).action_notify()
        self.assertEqual(result["params"]["type"], "success", result["params"]["message"])
        self.assertEqual(set(order.notification_ids.mapped("state")), {"sent"})
        self.assertEqual(len(self.sink.messages), 1)

    def test_send_now_ignores_the_window_and_the_retry_delay(self):
        line = self.queued_whatsapp()
        with freeze_time(MONDAY_21_LIMA):
            self.gateway.script.append((503, {"error": "maintenance"}))
            line.with_user(self.user)._send_now()
            self.assertEqual((line.state, line.attempts), ("queued", 1), "one attempt per send now")
            self.assertTrue(line.next_attempt_at)
            handled = line.with_user(self.user)._send_now()
        self.assertEqual(handled, line)
        self.assertEqual((line.state, line.attempts), ("sent", 2))

    def test_with_all_contacts_each_contact_gets_its_own_message(self):
        contacts = self.env["res.partner.collection.contact"]
        contacts.create({"partner_id": self.customer.id, "kind": "email", "value": "pagos@andina.example.com"})
        contacts.create({"partner_id": self.customer.id, "kind": "mobile", "value": "987654321"})
        order = self.create_order()
        self.env["ir.config_parameter"].sudo().set_param("payment_dunning.contact_mode", "all")
        lines = self.queue._queue(self.template, order)
        with freeze_time(MONDAY_10_LIMA):
            lines.with_user(self.user)._send_now()
        self.assertEqual(set(lines.mapped("state")), {"sent"})
        self.assertEqual(
            sorted(recipients[0] for recipients, _message in self.sink.messages),
            ["cobranzas@andina.example.com", "pagos@andina.example.com"],
        )
        numbers = sorted(self.gateway.json(index)["number"] for index in range(len(self.gateway.requests)))
        self.assertEqual(numbers, ["51987654321", "51995955955"])
        # sent again, the lines already sent do not go twice
        with freeze_time(MONDAY_10_LIMA):
            lines.with_user(self.user)._send_now()
        self.assertEqual(len(self.sink.messages), 2)

    def test_first_contact_only_by_default(self):
        contacts = self.env["res.partner.collection.contact"]
        contacts.create({"partner_id": self.customer.id, "kind": "email", "value": "pagos@andina.example.com"})
        lines = self.queue._queue(self.template, self.create_order(), channels=["email"])
        with freeze_time(MONDAY_10_LIMA):
            lines.with_user(self.user)._send_now()
        self.assertEqual(
            [recipients for recipients, _message in self.sink.messages], [["cobranzas@andina.example.com"]]
        )

    def test_send_now_never_sends_a_line_another_worker_holds(self):
        line = self.queued_whatsapp()
        line.write({"state": "sending"})  # claimed by the cron at the same moment
        self.assertFalse(line._send_now())
        self.assertFalse(self.gateway.requests)
        other = self.queued_whatsapp()
        other._send_now()
        other._send_now()
        self.assertEqual(len(self.gateway.requests), 1, "a sent line is not sent again")

    def test_send_now_is_for_collections_users(self):
        line = self.queued_whatsapp()
        with self.assertRaises(AccessError):
            line.with_user(self.internal_user)._send_now()
        with self.assertRaises(AccessError):
            line.with_user(self.user_company_2)._send_now()
        self.assertEqual(line.state, "queued")

    def test_retry_a_queued_line_that_had_an_error(self):
        """Notify met a gateway briefly down: Retry sends it now, at night, with the automatic tasks off."""
        self.template.channel_email = False
        order = self.create_order()
        with freeze_time(MONDAY_21_LIMA):
            self.gateway.script.append((503, {"error": "maintenance"}))
            order.action_notify()
            line = order.notification_ids
            self.assertEqual((line.state, line.failure_type), ("queued", "gateway_error"))
            with self.assertRaises(AccessError):
                line.with_user(self.internal_user).action_retry()
            result = line.with_user(self.user).action_retry()
        self.assertEqual(result["params"]["type"], "success", result["params"]["message"])
        self.assertIn("sent", result["params"]["message"])
        self.assertEqual(line.state, "sent")
        self.assertEqual(len(self.gateway.requests), 2)
        with self.assertRaisesRegex(UserError, "Only failed messages"):
            line.with_user(self.user).action_retry()

    def test_queue_with_the_composer_text(self):
        order = self.create_order(concept="Internet 300 Mbps")
        lines = self.queue._queue(
            self.template,
            order,
            channels=["email"],
            subject="Aviso @variable_orden",
            body="Estimado @variable_nombre, texto escrito a mano.",
        )
        self.assertEqual(lines.mapped("channel"), ["email"])
        self.assertEqual(lines.subject_override, "Aviso @variable_orden")
        lines._send_now()
        self.assertEqual(lines.state, "sent")
        _recipients, message = self.sink.messages[0]
        self.assertEqual(message["Subject"], f"Aviso {order.name}")
        self.assertIn("Estimado Andina Telecom, texto escrito a mano.", message.get_body(("html",)).get_content())
        self.assertEqual(lines.body, "Estimado Andina Telecom, texto escrito a mano.")
        # without overrides and channels: the template's, by each of its channels
        plain = self.queue._queue(self.template, order)
        self.assertEqual(sorted(plain.mapped("channel")), ["email", "whatsapp"])
        self.assertEqual(plain.mapped("body_override"), [False, False])


@tagged("post_install", "-at_install")
class TestDailyHoursSettings(WindowCase):
    def test_dunning_run_and_generation_at_their_hours_in_the_collections_timezone(self):
        generation = self.env.ref("payment_dunning.cron_service_plan_generate_orders")
        dunning_run = self.env.ref("payment_dunning.cron_dunning_run")
        with freeze_time(MONDAY_10_LIMA):
            settings = Form(self.env["res.config.settings"])
            self.assertEqual(settings.dunning_run_hour, 8.0)
            self.assertEqual(settings.dunning_collection_tz, "America/Lima")
            settings.dunning_automatic_tasks = True
            settings.dunning_run_hour = 7.5
            settings.save().execute()
            self.assertEqual(dunning_run.nextcall, utc("2026-11-24 12:30:00"), "07:30 tomorrow in Lima")
            self.assertEqual(generation.nextcall, utc("2026-11-24 14:00:00"), "09:00 tomorrow in Lima")
            settings = Form(self.env["res.config.settings"])
            settings.dunning_run_hour = 11.0
            settings.save().execute()
            self.assertEqual(dunning_run.nextcall, utc("2026-11-23 16:00:00"), "11:00 today in Lima")
            settings = Form(self.env["res.config.settings"])
            settings.dunning_collection_tz = "Europe/Madrid"
            settings.save().execute()
            self.assertEqual(self.company.collection_tz, "Europe/Madrid")
            self.assertEqual(dunning_run.nextcall, utc("2026-11-24 10:00:00"), "11:00 tomorrow in Madrid")
            self.assertEqual(generation.nextcall, utc("2026-11-24 08:00:00"), "09:00 tomorrow in Madrid")
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param("payment_dunning.run_hour"), "11.0")

    def test_manager_sets_the_window_and_the_recipients(self):
        self.assertFalse(self.manager.has_group("base.group_system"))
        with Form(self.env["payment.dunning.settings"].with_user(self.manager)) as form:
            self.assertEqual((form.dunning_window_start, form.dunning_window_end), (8.0, 20.0))
            self.assertEqual(form.dunning_contact_mode, "first")
            self.assertTrue(form.dunning_send_sat)
            self.assertFalse(form.dunning_send_sun)
            form.dunning_window_start = 9.0
            form.dunning_window_end = 18.5
            form.dunning_send_sat = False
            form.dunning_contact_mode = "all"
        form.record.action_save()
        self.assertEqual(
            (self.company.dunning_window_start, self.company.dunning_window_end, self.company.dunning_send_sat),
            (9.0, 18.5, False),
        )
        params = self.env["ir.config_parameter"].sudo()
        self.assertEqual(params.get_param("payment_dunning.contact_mode"), "all")
        self.assertEqual(Form(self.env["res.config.settings"]).dunning_contact_mode, "all")
        params.set_param("payment_dunning.contact_mode", "nonsense")
        self.assertEqual(Form(self.env["res.config.settings"]).dunning_contact_mode, "first")

    def test_manager_changes_only_their_own_companies(self):
        elsewhere = self.env["res.company"].create(
            {"name": "Cobranzas Quito", "country_id": self.env.ref("base.ec").id}
        )
        wizard = self.env["payment.dunning.settings"].with_user(self.manager).create({"company_id": elsewhere.id})
        wizard.dunning_window_start = 6.0
        with self.assertRaises(AccessError):
            wizard.action_save()
        self.assertEqual(elsewhere.dunning_window_start, 8.0)


@tagged("post_install", "-at_install")
class TestConnectionProof(WindowCase):
    def test_status_endpoint_proves_the_key(self):
        self.gateway.api_key = SECRET  # 401 to any other key
        connector = self.env["qrapi.connector"].create(
            {"name": "Evolution", "url": self.gateway.url, "api_key": SECRET, "preset": "evolution", "instance": "lima"}
        )
        self.gateway.script.append((200, {"instance": {"instanceName": "lima", "state": "open"}}))
        result = connector.with_user(self.manager).action_test_connection()
        self.assertEqual(result["params"]["type"], "success")
        self.assertIn("Proof: the status endpoint /instance/connectionState/lima", result["params"]["message"])
        self.assertIn("open", result["params"]["message"])
        request = self.gateway.requests[-1]
        self.assertEqual((request["method"], request["path"]), ("GET", "/instance/connectionState/lima"))
        connector.api_key = "sk-wrong"
        with self.assertRaisesRegex(UserError, "API key rejected"):
            connector.action_test_connection()
        with self.assertRaises(AccessError):
            connector.with_user(self.user).action_test_connection()

    def test_qrapi_proves_the_key_with_a_real_message(self):
        self.gateway.api_key = SECRET
        self.connector.api_key = "sk-wrong"
        action = self.connector.action_test_connection()
        wizard = self.env["qrapi.connector.test"].browse(action["res_id"])
        wizard.number = "+51 995 955 955"
        with self.assertRaisesRegex(UserError, "API key rejected"):
            wizard.action_send()
        self.assertEqual(wizard.state, "draft")
        self.connector.api_key = SECRET
        wizard.action_send()
        self.assertEqual(self.gateway.json()["number"], "51995955955")
        self.assertIn("Proof: a real message", wizard.action_confirm_received()["params"]["message"])


@tagged("post_install", "-at_install")
class TestCommunicationFilters(WindowCase):
    def test_active_and_inactive(self):
        open_order = self.create_order()
        paid_order = self.create_order()
        cancelled_order = self.create_order()
        sent_open = self.queue._queue(self.template, open_order, channels=["whatsapp"])
        sent_paid = self.queue._queue(self.template, paid_order, channels=["whatsapp"])
        cancelled_line = self.queue._queue(self.template, cancelled_order, channels=["whatsapp"])
        (sent_open | sent_paid)._send_now()
        queued = self.queued_whatsapp()
        paid_order.action_pay()
        cancelled_order.action_cancel()
        lines = sent_open | sent_paid | cancelled_line | queued
        self.assertEqual(cancelled_line.state, "cancelled")
        search = self.env["payment.order.notification"].with_user(self.user).search
        self.assertEqual(search([("id", "in", lines.ids), ("is_active", "=", True)]), sent_open | queued)
        self.assertEqual(search([("id", "in", lines.ids), ("is_active", "=", False)]), sent_paid | cancelled_line)
        self.assertEqual(search([("id", "in", lines.ids), ("is_active", "!=", True)]), sent_paid | cancelled_line)
        self.assertEqual(lines.filtered("is_active"), sent_open | queued)
        action = self.env.ref("payment_dunning.action_payment_order_notification")
        self.assertIn("search_default_filter_active", action.context)
