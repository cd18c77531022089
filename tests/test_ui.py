import base64
import os
import shutil
import subprocess
import tempfile
from unittest.mock import patch

import odoo
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import ChromeBrowser

from .common import LocalGatewayMixin, start_smtp_sink


@tagged("post_install", "-at_install")
class TestPaymentOrderUi(HttpCase):
    def test_create_pay_and_filter_in_the_browser(self):
        new_test_user(self.env, "collector", groups="base.group_user,payment_dunning.group_payment_dunning_user")
        self.env["res.partner"].create({"name": "Tour Customer", "is_company": True})
        self.start_tour(
            "/odoo/action-payment_dunning.action_payment_order",
            "payment_dunning_order_tour",
            login="collector",
        )
        order = self.env["payment.order"].search([("partner_id.name", "=", "Tour Customer")])
        self.assertEqual(order.state, "paid")
        self.assertEqual(order.amount, 123.45)
        self.assertEqual(order.line_ids.mapped("name"), ["Fiber 500 Mbps"])
        self.assertTrue(order.paid_date)
        self.assertEqual(order.create_uid.login, "collector")


@tagged("post_install", "-at_install")
class TestNotifyUi(LocalGatewayMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_gateway()
        cls.sink, _server = start_smtp_sink(cls)
        cls.env["qrapi.connector"].create({"name": "Local", "url": cls.gateway.url, "api_key": "k", "rate_limit": 0})

    def setUp(self):
        super().setUp()
        # the gateway and the SMTP server live for the class: each test counts its own messages
        self.gateway.requests.clear()
        self.sink.messages.clear()

    def test_notify_from_the_order_form(self):
        new_test_user(self.env, "notifier", groups="base.group_user,payment_dunning.group_payment_dunning_user")
        partner = self.env["res.partner"].create(
            {
                "name": "Tour Notify",
                "country_id": self.env.ref("base.pe").id,
                "collection_whatsapp": "995955955",
                "collection_email": "pagos@tour.example.com",
            }
        )
        order = self.env["payment.order"].create(
            {"partner_id": partner.id, "due_date": "2026-12-15", "amount": 75.0, "concept": "Fibra"}
        )
        # Odoo skips the SMTP conversation in test mode; here a real local server receives it.
        with patch.object(odoo.modules.module, "current_test", None):
            self.start_tour(
                f"/odoo/action-payment_dunning.action_payment_order/{order.id}",
                "payment_dunning_notify_tour",
                login="notifier",
            )
        self.assertEqual(len(self.gateway.requests), 1)
        self.assertEqual(len(self.sink.messages), 1)
        self.assertEqual(self.sink.messages[0][0], ["pagos@tour.example.com"])
        self.assertEqual(set(order.notification_ids.mapped("state")), {"sent"})

    def test_bulk_cancel_and_row_notify_in_the_list(self):
        new_test_user(self.env, "bulker", groups="base.group_user,payment_dunning.group_payment_dunning_user")
        partner = self.env["res.partner"].create(
            {
                "name": "Bulk Customer",
                "country_id": self.env.ref("base.pe").id,
                "collection_whatsapp": "995955955",
                "collection_email": "pagos@bulk.example.com",
            }
        )
        orders = self.env["payment.order"].create(
            [
                {"partner_id": partner.id, "due_date": "2026-12-15", "amount": amount, "concept": concept}
                for amount, concept in ((10.0, "Bulk A"), (20.0, "Bulk B"), (30.0, "Bulk C"))
            ]
        )
        with patch.object(odoo.modules.module, "current_test", None):
            self.start_tour(
                "/odoo/action-payment_dunning.action_payment_order",
                "payment_dunning_list_actions_tour",
                login="bulker",
            )
        self.assertEqual(orders.mapped("state"), ["cancelled", "cancelled", "pending"])
        self.assertFalse(orders[:2].notification_ids)
        self.assertEqual(sorted(orders[2].notification_ids.mapped("channel")), ["email", "whatsapp"])
        self.assertEqual(set(orders[2].notification_ids.mapped("state")), {"sent"})
        self.assertEqual(self.sink.messages[-1][0], ["pagos@bulk.example.com"])


@tagged("post_install", "-at_install")
class TestServicePlanUi(HttpCase):
    def test_plans_billed_from_the_browser(self):
        new_test_user(self.env, "planner", groups="base.group_user,payment_dunning.group_payment_dunning_manager")
        self.env["service.plan"].search([]).action_archive()  # demo plans out of the preview's counts
        partner = self.env["res.partner"].create({"name": "Tour Plan Customer", "is_company": True})
        self.start_tour(
            "/odoo/action-payment_dunning.action_service_plan",
            "payment_dunning_plan_tour",
            login="planner",
        )
        plans = partner.service_plan_ids
        self.assertEqual(sorted(plans.mapped("payment_mode")), ["installments", "recurring"])
        order = self.env["payment.order"].search([("partner_id", "=", partner.id)])
        self.assertEqual(order.origin, "plan")
        self.assertEqual(order.amount_total, 149.9)
        self.assertEqual(order.line_ids.plan_id, plans)
        self.assertEqual(plans.mapped("installments_billed"), [1, 1])


@tagged("post_install", "-at_install")
class TestCollectionsUi(LocalGatewayMixin, HttpCase):
    """The walk of issue 7 in a company of its own, so the dashboard starts from zero."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_gateway()
        cls.sink, _server = start_smtp_sink(cls)
        cls.env["qrapi.connector"].create({"name": "Local", "url": cls.gateway.url, "api_key": "k", "rate_limit": 0})
        cls.company = cls.env["res.company"].create(
            {
                "name": "Tour Cobranzas SAC",
                "country_id": cls.env.ref("base.pe").id,
                "currency_id": cls.env.ref("base.PEN").id,
                "email": "cobranzas@tour.example.com",
            }
        )
        cls.env.ref("base.PEN").active = True

    def collector(self, login, lang="en_US"):
        return new_test_user(
            self.env,
            login,
            groups="base.group_user,base.group_partner_manager,payment_dunning.group_payment_dunning_manager",
            company_id=self.company.id,
            company_ids=[(6, 0, self.company.ids)],
            lang=lang,
        )

    def test_customer_order_notify_pay_and_dashboard(self):
        self.collector("cobrador")
        # Odoo skips the SMTP conversation in test mode; here a real local server receives it.
        with patch.object(odoo.modules.module, "current_test", None):
            self.start_tour(
                "/odoo/action-payment_dunning.action_collections_dashboard",
                "payment_dunning_collections_tour",
                login="cobrador",
            )
        order = self.env["payment.order"].search([("partner_id.name", "=", "Cliente Tour")])
        self.assertEqual((order.state, order.amount, order.company_id), ("paid", 89.9, self.company))
        self.assertEqual(order.partner_id.collection_whatsapp, "+51995955955")
        self.assertEqual(sorted(order.notification_ids.mapped("state")), ["sent", "sent"])
        self.assertEqual(len(self.gateway.requests), 1)
        self.assertEqual(self.sink.messages[0][0], ["pagos@cliente-tour.example.com"])

    def test_spanish_user_sees_spanish_screens(self):
        self.env["res.lang"]._activate_lang("es_ES")
        modules = self.env["ir.module.module"].search([("name", "in", ["base", "web", "mail", "payment_dunning"])])
        modules._update_translations(["es_ES"])
        self.collector("cobradora", lang="es_ES")
        self.start_tour(
            "/odoo/action-payment_dunning.action_collections_dashboard",
            "payment_dunning_spanish_tour",
            login="cobradora",
        )


@tagged("post_install", "-at_install")
class TestScreens(HttpCase):
    """The main screens with the demo data, photographed at the end of their tours.

    ``PAYMENT_DUNNING_SCREENSHOTS=static/description ./dev test`` (or any folder) keeps the pictures:
    they are the README's and the apps page's.
    """

    SCREENS = (
        ("dashboard", "/odoo/action-payment_dunning.action_collections_dashboard"),
        ("orders", "/odoo/action-payment_dunning.action_payment_order"),
        ("order_actions", "/odoo/action-payment_dunning.action_payment_order"),
        ("new_order", "/odoo/action-payment_dunning.action_payment_order"),
        ("order", "/odoo/action-payment_dunning.action_payment_order/{order}"),
        ("plan", "/odoo/action-payment_dunning.action_service_plan/{plan}"),
        ("template", "/odoo/action-payment_dunning.action_dunning_template/{template}"),
        ("aging", "/odoo/action-payment_dunning.action_payment_dunning_aging"),
        ("settings", "/odoo/action-payment_dunning.action_collections_settings"),
        ("register_payment", "/odoo/action-payment_dunning.action_payment_order/{order}"),
        ("payments", "/odoo/action-payment_dunning.action_payment_order_payment"),
        ("promises", "/odoo/action-payment_dunning.action_payment_order_promise"),
        ("pay_now", "{pay_now}"),
        ("late_fees", "/odoo/action-payment_dunning.action_collections_settings"),
    )

    def setUp(self):
        super().setUp()
        settings = {"dunning_automatic_tasks": True, "dunning_notifications": True}
        self.env["res.config.settings"].create(settings).execute()
        self.env["payment.order"]._cron_mark_overdue()
        self.env["service.plan"]._generate_orders(self.env["res.company"].search([]))
        template = self.env["dunning.template"]._get_default()
        template.write({"auto_send": True, "days_from": -3, "days_to": 30, "interval_days": 7})
        order = self.env.ref("payment_dunning.payment_order_demo_overdue")
        order._set_balance(order.balance / 2)
        order.message_post(body="Tesorería promete pagar el saldo el viernes.", subtype_xmlid="mail.mt_note")
        plan = self.env.ref("payment_dunning.service_plan_demo_lucia_router")
        # late fees set but still off: the preview shows what turning them on would add today
        order.company_id.write(
            {
                "late_fee_grace_days": 5,
                "late_fee_fixed": 15.0,
                "late_fee_monthly_rate": 2.0,
                "late_fee_cap_percent": 20.0,
            }
        )
        pay_now = order.partner_id._collection_pay_url(order.company_id)
        self.assertTrue(pay_now, "the demo provider is enabled")
        self.screen_ids = {
            "order": order.id,
            "plan": plan.id,
            "template": template.id,
            "pay_now": pay_now.replace(order.get_base_url(), ""),
        }

    def capture(self, url, name):
        """Run the screen's tour and photograph the page it ends on, before the browser closes."""
        shots = []
        close = ChromeBrowser.stop

        def photograph_then_close(browser):
            if browser.ws is not None:
                browser._websocket_request(
                    "Runtime.evaluate",
                    params={"expression": "document.querySelectorAll('.o_notification').forEach(n => n.remove())"},
                )
                shot = browser._websocket_request("Page.captureScreenshot", params={"format": "png"})
                shots.append(base64.b64decode(shot["data"]))
            return close(browser)

        with patch.object(ChromeBrowser, "stop", photograph_then_close):
            self.start_tour(url, f"payment_dunning_screen_{name}", login="admin")
        return shots[0]

    def test_payment_receipt_pdf(self):
        """The Constancia de pago of a demo payment, rendered by wkhtmltopdf (its page is the README's)."""
        order = self.env.ref("payment_dunning.payment_order_demo_overdue")
        payment = order._register_payment(order.balance / 2, order.due_date, reference="OP-778812")
        _name, pdf = payment.with_context(force_report_rendering=True)._receipt_pdf()
        self.assertTrue(pdf.startswith(b"%PDF"))
        folder = os.environ.get("PAYMENT_DUNNING_SCREENSHOTS")
        if folder and shutil.which("pdftoppm"):
            with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
                file.write(pdf)
                file.flush()
                target = os.path.join(folder, "receipt")
                subprocess.run(["pdftoppm", "-png", "-r", "70", "-singlefile", file.name, target], check=True)

    def test_main_screens(self):
        folder = os.environ.get("PAYMENT_DUNNING_SCREENSHOTS")
        for name, url in self.SCREENS:
            with self.subTest(screen=name):
                png = self.capture(url.format(**self.screen_ids), name)
                self.assertTrue(png.startswith(b"\x89PNG") and len(png) > 10_000, f"{name}: no picture")
                if folder:
                    with open(os.path.join(folder, f"{name}.png"), "wb") as file:
                        file.write(png)
