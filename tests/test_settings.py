from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged

from .common import PaymentDunningCase


@tagged("post_install", "-at_install")
class TestCollectionsSettings(PaymentDunningCase):
    def crons(self):
        return self.env.ref("payment_dunning.cron_payment_order_mark_overdue") | self.env.ref(
            "payment_dunning.cron_payment_order_send_queue"
        )

    def test_automatic_tasks_switch_the_jobs(self):
        self.assertEqual(set(self.crons().mapped("active")), {False}, "off until the user turns them on")
        self.assertFalse(self.env["payment.order"].get_panel_data([])["automatic_tasks"])
        settings = Form(self.env["res.config.settings"])
        self.assertEqual(settings.dunning_days_before_due, 3)
        self.assertEqual(settings.dunning_generation_hour, 9.0)
        settings.dunning_automatic_tasks = True
        settings.save().execute()
        self.assertEqual(set(self.crons().mapped("active")), {True})
        self.assertTrue(self.env["payment.order"].get_panel_data([])["automatic_tasks"])
        settings = Form(self.env["res.config.settings"])
        settings.dunning_automatic_tasks = False
        settings.save().execute()
        self.assertEqual(set(self.crons().mapped("active")), {False})

    def test_settings_edit_the_global_template(self):
        default = self.env.ref("payment_dunning.dunning_template_default")
        with Form(self.env["res.config.settings"]) as settings:
            self.assertEqual(settings.dunning_template_body, default.body)
            settings.dunning_template_body = "Estimado @variable_nombre, su saldo es @variable_saldo"
        self.assertEqual(default.body, "Estimado @variable_nombre, su saldo es @variable_saldo")
        with self.assertRaisesRegex(ValidationError, "@variable_sueldo"):
            self.env["res.config.settings"].create({"dunning_template_body": "Hola @variable_sueldo"}).execute()

    def test_panel_tells_who_may_configure(self):
        orders = self.env["payment.order"]
        self.assertTrue(orders.with_user(self.manager).get_panel_data([])["can_configure"])
        self.assertFalse(orders.with_user(self.user).get_panel_data([])["can_configure"])
        # a manager without administrator rights is sent to the settings screen they may save
        action = orders.with_user(self.manager).get_panel_data([])["settings_action"]
        self.assertEqual(action, "payment_dunning.action_payment_dunning_settings")
        self.assertTrue(self.env[self.env.ref(action).res_model].with_user(self.manager).has_access("create"))
        self.assertEqual(orders.get_panel_data([])["settings_action"], "payment_dunning.action_collections_settings")

    def test_chosen_connector_and_mail_server_are_stored(self):
        connector = self.env["qrapi.connector"].create({"name": "Main", "url": "https://cliente1.qrapi.com"})
        server = self.env["ir.mail_server"].create({"name": "SMTP", "smtp_host": "127.0.0.1"})
        settings = Form(self.env["res.config.settings"])
        settings.dunning_connector_id = connector
        settings.dunning_mail_server_id = server
        settings.save().execute()
        notification = self.env["payment.order.notification"].new({"company_id": self.company.id})
        self.assertEqual(notification._find_whatsapp_connector(), connector)
        self.assertEqual(notification._collection_mail_server(), server)
