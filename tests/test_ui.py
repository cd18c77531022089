from odoo.tests import HttpCase, new_test_user, tagged


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
