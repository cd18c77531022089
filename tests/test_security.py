from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import PaymentDunningCase


@tagged("post_install", "-at_install")
class TestAccessRights(PaymentDunningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.order = cls.create_order(100.0)
        cls.order_company_2 = cls.create_order(70.0, company=cls.company_2, partner=cls.customer_2)

    def test_plain_internal_user_sees_no_orders(self):
        orders = self.env["payment.order"].with_user(self.internal_user)
        with self.assertRaises(AccessError):
            orders.search([])
        with self.assertRaises(AccessError):
            self.order.with_user(self.internal_user).read(["name"])
        with self.assertRaises(AccessError):
            orders.create({"partner_id": self.customer.id, "due_date": "2026-12-01", "amount": 5.0})
        menu = self.env.ref("payment_dunning.menu_collections_root")
        visible = self.env["ir.ui.menu"].with_user(self.internal_user)._visible_menu_ids()
        self.assertNotIn(menu.id, visible)

    def test_collection_user_works_orders_but_cannot_delete(self):
        orders = self.env["payment.order"].with_user(self.user)
        order = orders.create({"partner_id": self.customer.id, "due_date": "2026-12-01", "amount": 5.0})
        self.assertEqual(orders.search([]), self.order.with_user(self.user) | order)
        order.action_pay()
        self.order.with_user(self.user).action_cancel()
        with self.assertRaises(AccessError):
            self.order.with_user(self.user).unlink()
        menu = self.env.ref("payment_dunning.menu_collections_root")
        visible = self.env["ir.ui.menu"].with_user(self.user)._visible_menu_ids()
        self.assertIn(menu.id, visible)
        self.assertNotIn(
            self.env.ref("payment_dunning.menu_collections_configuration").id,
            visible,
            "configuration is for managers",
        )

    def test_manager_deletes_cancelled_orders(self):
        order = self.order.with_user(self.manager)
        with self.assertRaises(UserError):
            order.unlink()
        order.action_cancel()
        order.unlink()
        self.assertFalse(self.order.exists())

    def test_other_company_is_invisible(self):
        env_2 = self.env(user=self.user_company_2, context={"allowed_company_ids": self.company_2.ids})
        self.assertEqual(env_2["payment.order"].search([]).ids, self.order_company_2.ids)
        with self.assertRaises(AccessError):
            env_2["payment.order"].browse(self.order.id).read(["name"])
        with self.assertRaises(AccessError):
            env_2["payment.order.line"].browse(self.order.line_ids.ids).read(["amount"])
        orders_1 = self.env["payment.order"].with_user(self.user)
        self.assertNotIn(self.order_company_2.id, orders_1.search([]).ids)

    def test_manager_with_both_companies(self):
        orders = (
            self.env["payment.order"]
            .with_user(self.manager)
            .with_context(allowed_company_ids=[self.company.id, self.company_2.id])
        )
        self.assertEqual(set(orders.search([]).ids), {self.order.id, self.order_company_2.id})
