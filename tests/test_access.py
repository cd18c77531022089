from odoo import Command
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import PaymentDunningCase


@tagged("post_install", "-at_install")
class TestConfigurationAccess(PaymentDunningCase):
    """What a Collections Manager without administrator rights, or of another company, can do."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager_company_2 = new_test_user(
            cls.env,
            "dunning_manager_2",
            groups="payment_dunning.group_payment_dunning_manager",
            company_id=cls.company_2.id,
            company_ids=[Command.set(cls.company_2.ids)],
        )
        cls.gateway = cls.env["qrapi.connector"].create(
            {
                "name": "Lima gateway",
                "url": "https://cliente1.qrapi.com",
                "api_key": "sk-lima",
                "company_id": cls.company.id,
            }
        )
        cls.template = cls.env["dunning.template"].create(
            {"name": "Aviso Lima", "body": "Hola @variable_nombre", "company_id": cls.company.id}
        )

    def test_manager_cannot_send_the_key_elsewhere(self):
        gateway = self.gateway.with_user(self.manager)
        for field, value in (
            ("url", "https://attacker.example.com"),
            ("status_path", "/steal"),
            ("auth_header", "X-Leak"),
            ("preset", "waha"),
        ):
            with self.assertRaisesRegex(AccessError, "Only an administrator can change where"):
                gateway.write({field: value})
        self.assertEqual(self.gateway.url, "https://cliente1.qrapi.com")
        # harmless settings stay the manager's
        gateway.write({"name": "Gateway Lima", "timeout": 20, "rate_limit": 30, "url": self.gateway.url})
        self.assertEqual((self.gateway.name, self.gateway.timeout), ("Gateway Lima", 20))
        # an administrator may
        admin = new_test_user(
            self.env,
            "collections_admin",
            groups="base.group_system,payment_dunning.group_payment_dunning_manager",
            company_id=self.company.id,
            company_ids=[Command.set(self.company.ids)],
        )
        self.gateway.with_user(admin).url = "https://cliente2.qrapi.com"
        self.assertEqual(self.gateway.url, "https://cliente2.qrapi.com")

    def test_another_company_cannot_see_or_touch_gateways_and_templates(self):
        for record in (self.gateway, self.template):
            other = record.with_user(self.manager_company_2)
            with self.assertRaises(AccessError):
                other.read(["name"])
            with self.assertRaises(AccessError):
                other.write({"name": "taken"})
            with self.assertRaises(AccessError):
                other.unlink()
        shared = self.env["dunning.template"].create({"name": "Para todos", "body": "Hola @variable_nombre"})
        self.assertEqual(shared.with_user(self.manager_company_2).name, "Para todos")

    def test_import_errors_stay_in_their_company(self):
        batch = self.env["payment.dunning.import"].create({"kind": "orders", "company_id": self.company.id})
        error = self.env["payment.dunning.import.error"].create(
            {"import_id": batch.id, "line": 2, "reason": "customer does not exist"}
        )
        with self.assertRaises(AccessError):
            error.with_user(self.manager_company_2).read(["reason"])
        self.assertEqual(error.with_user(self.manager).reason, "customer does not exist")


@tagged("post_install", "-at_install")
class TestPlanBounds(PaymentDunningCase):
    def test_billing_day_and_period_are_bounded(self):
        plan = self.env["service.plan"].create(
            {
                "partner_id": self.customer.id,
                "name": "Internet",
                "amount": 50.0,
                "next_due_date": "2026-12-10",
            }
        )
        for values in ({"billing_day": -1}, {"billing_day": 32}, {"period_months": 0}, {"period_months": 100000}):
            with self.assertRaises(ValidationError):
                plan.with_user(self.user).write(values)
        plan.with_user(self.user).write({"period_months": 120})
        self.assertEqual(plan.period_months, 120)
