from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestSmoke(TransactionCase):
    def test_smoke(self):
        self.assertTrue(self.env["res.partner"].search([], limit=1))
