from freezegun import freeze_time
from psycopg2 import IntegrityError

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import PaymentDunningCase


@tagged("post_install", "-at_install")
class TestDunningTemplate(PaymentDunningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("es_PE")
        cls.customer.lang = "es_PE"
        cls.template = cls.env["dunning.template"].create({"name": "Test", "body": "x", "company_id": cls.company.id})

    def render(self, body, orders):
        self.template.body = body
        return self.template._render_body(orders)

    def test_default_template_has_spec_text(self):
        default = self.env["dunning.template"]._get_default(self.company)
        self.assertEqual(default, self.env.ref("payment_dunning.dunning_template_default"))
        self.assertIn("Hola @variable_nombre", default.body)
        self.assertIn("- Vence: *@variable_fecha_vencimiento*", default.body)

    @freeze_time("2026-11-22 15:00:00")
    def test_every_variable(self):
        order = self.create_order(
            due_date="2026-11-12",
            concept="Internet noviembre",
            line_ids=self.lines(250.0, 30.5),
            charges_amount=10.0,
        )
        self.env["payment.order"]._cron_mark_overdue()
        body = (
            "@variable_nombre|@variable_plan|@variable_precios|@variable_fecha_vencimiento|"
            "@variable_concepto|@variable_orden|@variable_saldo|@variable_dias_vencido|@variable_empresa"
        )
        values = self.render(body, order).split("|")
        self.assertEqual(values[0], "Andina Telecom")
        self.assertEqual(values[1], "Service 1, Service 2")
        self.assertEqual(values[2], "S/\xa0290.50")
        self.assertEqual(values[3], "12/11/2026", "Peruvian date format for a Spanish (Peru) customer")
        self.assertEqual(values[4], "Internet noviembre")
        self.assertEqual(values[5], order.name)
        self.assertEqual(values[6], "S/\xa0290.50")
        self.assertEqual(values[7], "10")
        self.assertEqual(values[8], "Cobranzas Lima")

    def test_english_customer_gets_english_dates(self):
        self.customer.lang = "en_US"
        order = self.create_order(due_date="2026-11-12")
        self.assertEqual(self.render("@variable_fecha_vencimiento", order), "11/12/2026")

    def test_detail_lists_every_order(self):
        first = self.create_order(40.0, due_date="2026-11-30", concept="Diciembre")
        second = self.create_order(60.0, due_date="2026-11-01", concept="Noviembre")
        text = self.render("Total @variable_saldo\n@variable_detalle", first | second)
        lines = text.splitlines()
        self.assertEqual(lines[0], "Total S/\xa0100.00")
        self.assertTrue(lines[1].startswith(f"- {second.name} · Noviembre · 01/11/2026"))
        self.assertTrue(lines[2].startswith(f"- {first.name} · Diciembre · 30/11/2026"))

    def test_unknown_variable_is_refused(self):
        with self.assertRaisesRegex(ValidationError, r"@variable_nombr\b.*Valid variables: @variable_nombre"):
            self.template.body = "Hola @variable_nombr"
        with self.assertRaisesRegex(ValidationError, "@variable_foo"):
            self.template.subject = "Pago @variable_foo"

    def test_user_text_is_never_evaluated(self):
        order = self.create_order()
        body = "{{ 7*7 }} ${7*7} <t t-out='7*7'/> <script>alert(1)</script> @variable_orden"
        text = self.render(body, order)
        self.assertEqual(text, body.replace("@variable_orden", order.name))
        html = self.template._text_to_html(text)
        self.assertIn("&lt;script&gt;", html)
        self.assertNotIn("<script>", html)
        self.assertNotIn("49", html)

    def test_bold_and_line_breaks_in_html(self):
        html = self.template._text_to_html("Plan *Fibra 500*\n- Monto: *S/ 10*")
        self.assertEqual(str(html), "Plan <b>Fibra 500</b><br/>\n- Monto: <b>S/ 10</b>")

    def test_one_default_per_company(self):
        with self.assertRaisesRegex(ValidationError, "Only one template can be the default"):
            self.env["dunning.template"].create({"name": "Second default", "body": "x", "is_default": True})
        self.template.is_default = True  # this company's own default
        self.assertEqual(self.env["dunning.template"]._get_default(self.company), self.template)

    def test_a_channel_is_required(self):
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.cr.savepoint():
            self.template.write({"channel_email": False, "channel_whatsapp": False})
            self.template.flush_recordset()

    def test_only_managers_edit_templates(self):
        template = self.template.with_user(self.user)
        self.assertEqual(template.name, "Test")
        with self.assertRaises(AccessError):
            template.body = "changed"
        self.template.with_user(self.manager).body = "changed by a manager"
        self.assertEqual(self.template.body, "changed by a manager")
