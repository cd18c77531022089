from freezegun import freeze_time

from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged

from .common import PaymentDunningCase


@tagged("post_install", "-at_install")
class TestCollectionContact(PaymentDunningCase):
    def new_partner(self, **values):
        return self.env["res.partner"].create({"name": "Customer", **values})

    def test_local_number_takes_partner_country(self):
        self.assertEqual(self.customer.collection_whatsapp, "+51995955955")
        partner = self.new_partner(country_id=self.env.ref("base.us").id, collection_whatsapp="(415) 555-0132")
        self.assertEqual(partner.collection_whatsapp, "+14155550132")
        partner = self.new_partner(country_id=self.env.ref("base.be").id, collection_whatsapp="0470 12 34 56")
        self.assertEqual(partner.collection_whatsapp, "+32470123456")

    def test_international_numbers_keep_their_country(self):
        partner = self.new_partner(country_id=self.country_pe.id, collection_whatsapp="+34 612 345 678")
        self.assertEqual(partner.collection_whatsapp, "+34612345678")
        partner = self.new_partner(collection_whatsapp="0051 995 955 955")
        self.assertEqual(partner.collection_whatsapp, "+51995955955")

    def test_no_partner_country_uses_company_country(self):
        partner = self.new_partner(collection_whatsapp="987 654 321")
        self.assertEqual(partner.collection_whatsapp, "+51987654321")

    def test_write_normalises_with_each_partner_country(self):
        mexican = self.new_partner(country_id=self.env.ref("base.mx").id)
        peruvian = self.new_partner(country_id=self.country_pe.id)
        peruvian.write({"collection_whatsapp": "995 955 955"})
        self.assertEqual(peruvian.collection_whatsapp, "+51995955955")
        mexican.write({"collection_whatsapp": "55 1234 5678"})
        self.assertEqual(mexican.collection_whatsapp, "+525512345678")
        (mexican | peruvian).write({"collection_whatsapp": "+51 912 345 678"})
        self.assertEqual(set((mexican | peruvian).mapped("collection_whatsapp")), {"+51912345678"})

    def test_garbage_numbers_are_refused(self):
        for garbage in ("not a phone", "123", "+51 99595595512345678", "99595"):
            with self.subTest(number=garbage), self.assertRaisesRegex(ValidationError, "is not valid"):
                self.new_partner(country_id=self.country_pe.id, collection_whatsapp=garbage)
        with self.assertRaisesRegex(ValidationError, "is not valid"):
            self.customer.collection_whatsapp = "abc"
        self.assertEqual(self.customer.collection_whatsapp, "+51995955955")

    def test_clearing_the_number(self):
        self.customer.collection_whatsapp = False
        self.assertFalse(self.customer.collection_whatsapp)

    def test_form_onchange_shows_e164(self):
        with Form(self.env["res.partner"]) as form:
            form.name = "Form customer"
            form.country_id = self.country_pe
            form.collection_whatsapp = "995 955 955"
            self.assertEqual(form.collection_whatsapp, "+51995955955")

    def test_collection_email_is_validated(self):
        partner = self.new_partner(email="main@example.com", collection_email="billing@example.com")
        self.assertEqual(partner.collection_email, "billing@example.com")
        self.assertEqual(partner.email, "main@example.com", "the main email is untouched")
        with self.assertRaisesRegex(ValidationError, "not a valid email address"):
            self.new_partner(collection_email="billing at example")
        with self.assertRaisesRegex(ValidationError, "not a valid email address"):
            partner.collection_email = "a@b.com, c@d.com"

    def test_document_number_unique_per_company(self):
        values = {"document_type": "dni", "document_number": "70000001"}
        first = self.new_partner(company_id=self.company.id, **values)
        with self.assertRaisesRegex(ValidationError, "already used by"):
            self.new_partner(company_id=self.company.id, **values)
        # another company, another type: fine
        self.new_partner(company_id=self.company_2.id, **values)
        self.new_partner(company_id=self.company.id, document_type="ruc", document_number="70000001")
        # a partner shared by every company clashes with all of them
        with self.assertRaisesRegex(ValidationError, "already used by"):
            self.new_partner(**values)
        # an archived customer still owns its number
        first.active = False
        with self.assertRaisesRegex(ValidationError, "already used by"):
            self.new_partner(company_id=self.company.id, **values)

    def test_document_number_is_trimmed(self):
        partner = self.new_partner(document_type="dni", document_number="  12345678 ")
        self.assertEqual(partner.document_number, "12345678")

    @freeze_time("2026-11-20 15:00:00")
    def test_open_and_overdue_totals(self):
        self.create_order(100.0)
        self.create_order(40.0, due_date="2020-01-01")
        self.create_order(25.0, due_date="2020-01-01").action_pay()
        self.create_order(10.0).action_cancel()
        self.create_order(999.0, partner=self.customer_2)
        self.env["payment.order"]._cron_mark_overdue()
        self.customer.invalidate_recordset()
        self.assertEqual(self.customer.payment_order_count, 4)
        self.assertEqual(self.customer.collection_open_amount, 140.0)
        self.assertEqual(self.customer.collection_overdue_amount, 40.0)
        action = self.customer.action_view_payment_orders()
        orders = self.env["payment.order"].search(action["domain"])
        self.assertEqual(len(orders), 4)
        self.assertEqual(orders.partner_id, self.customer)

    def test_excluded_flag(self):
        self.customer.dunning_excluded = True
        self.assertIn(
            self.customer,
            self.env["res.partner"].search([("dunning_excluded", "=", True)]),
        )
