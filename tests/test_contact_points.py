import base64

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, tagged

from .common import PaymentDunningCase

CUSTOMER_HEADER = (
    "Tipo de documento,Número de documento,Nombres,Celular_1,Celular_1 código país,Celular_2,Celular_3,"
    "Correo1,Correo2\n"
)


class ContactPointsCase(PaymentDunningCase):
    def points(self, partner, kind):
        return self.env["res.partner.collection.contact"].search(
            [("partner_id", "=", partner.id), ("kind", "=", kind)], order="sequence, id"
        )

    def add(self, partner, kind, *values):
        partner.write({"collection_contact_ids": [Command.create({"kind": kind, "value": value}) for value in values]})

    def importer(self, content, kind="customers", mode="all", company=None):
        return self.env["payment.dunning.import"].create(
            {
                "kind": kind,
                "file": base64.b64encode(content.encode()),
                "filename": "customers.csv",
                "mode": mode,
                "company_id": (company or self.company).id,
            }
        )

    def problems(self, record, severity="error"):
        return [(error.line, error.column, error.reason) for error in record.error_ids if error.severity == severity]


@tagged("post_install", "-at_install")
class TestContactPoints(ContactPointsCase):
    def test_the_two_defaults_are_the_first_contact_points(self):
        self.assertEqual(self.points(self.customer, "mobile").mapped("value"), ["+51995955955"])
        self.assertEqual(self.points(self.customer, "email").mapped("value"), ["cobranzas@andina.example.com"])
        self.add(self.customer, "mobile", "987 654 321", "+58 414 1234567")
        self.assertEqual(
            self.points(self.customer, "mobile").mapped("value"), ["+51995955955", "+51987654321", "+584141234567"]
        )
        self.assertEqual(self.customer.collection_whatsapp, "+51995955955", "adding numbers keeps the default")
        # writing the default replaces the first number; the others stay
        self.customer.collection_whatsapp = "912 345 678"
        self.assertEqual(
            self.points(self.customer, "mobile").mapped("value"), ["+51912345678", "+51987654321", "+584141234567"]
        )
        # the first of the list is the default: reordering changes it
        self.points(self.customer, "mobile")[2].sequence = -5
        self.assertEqual(self.customer.collection_whatsapp, "+584141234567")
        self.points(self.customer, "mobile")[0].unlink()
        self.assertEqual(self.customer.collection_whatsapp, "+51912345678")

    def test_email_points_are_normalised_and_validated(self):
        self.add(self.customer, "email", "  Pagos@Andina.Example.COM ")
        self.assertEqual(self.points(self.customer, "email")[1].value, "pagos@andina.example.com")
        for bad in ("no es correo", "a@example.com, b@example.com", "Name <n@example.com>"):
            with self.subTest(email=bad), self.assertRaisesRegex(ValidationError, "is not a valid email address"):
                self.add(self.customer, "email", bad)
        with self.assertRaisesRegex(ValidationError, "is not valid"):
            self.add(self.customer, "mobile", "12")

    def test_at_most_five_of_each_kind_and_no_duplicates(self):
        self.add(self.customer, "mobile", "911111111", "922222222", "933333333", "944444444")
        # assertRaisesRegex does not roll back: the savepoint does
        with self.assertRaisesRegex(ValidationError, "at most 5 mobiles and 5 emails"), self.env.cr.savepoint():
            self.add(self.customer, "mobile", "955555555")
        self.assertEqual(len(self.points(self.customer, "mobile")), 5)
        with self.assertRaisesRegex(ValidationError, "already has \\+51911111111"):
            self.env["res.partner.collection.contact"].create(
                {"partner_id": self.customer.id, "kind": "mobile", "value": "+51 911 111 111"}
            )

    def test_clearing_the_default_promotes_the_next_one(self):
        self.add(self.customer, "email", "second@example.com")
        self.customer.collection_email = False
        self.assertEqual(self.customer.collection_email, "second@example.com")
        self.customer.collection_email = False
        self.assertFalse(self.customer.collection_email)
        self.assertFalse(self.points(self.customer, "email"))

    def test_a_new_customer_with_a_number_gets_its_contact_point(self):
        partner = self.env["res.partner"].create(
            {"name": "Nuevo", "country_id": self.country_pe.id, "collection_whatsapp": "995955956"}
        )
        self.assertEqual(self.points(partner, "mobile").mapped("value"), ["+51995955956"])
        listed = self.env["res.partner"].create(
            {
                "name": "Con lista",
                "country_id": self.country_pe.id,
                "collection_contact_ids": [
                    Command.create({"kind": "email", "value": "uno@example.com", "sequence": 1}),
                    Command.create({"kind": "email", "value": "dos@example.com", "sequence": 2}),
                ],
            }
        )
        self.assertEqual(listed.collection_email, "uno@example.com")

    def test_form_edits_the_list(self):
        with Form(self.customer) as form, form.collection_contact_ids.new() as line:
            line.kind = "email"
            line.value = "tesoreria@andina.example.com"
        self.assertEqual(
            self.points(self.customer, "email").mapped("value"),
            ["cobranzas@andina.example.com", "tesoreria@andina.example.com"],
        )

    def test_contact_points_follow_the_company_rules(self):
        foreign = self.env["res.partner"].create(
            {"name": "Madrid SL", "company_id": self.company_2.id, "collection_email": "m@example.es"}
        )
        points = self.env["res.partner.collection.contact"].with_user(self.user)
        self.assertFalse(points.search([("partner_id", "=", foreign.id)]))
        self.assertTrue(points.search([("partner_id", "=", self.customer.id)]))
        with self.assertRaises(AccessError):
            self.env["res.partner.collection.contact"].with_user(self.internal_user).search([])

    def test_old_contacts_text_becomes_contact_points(self):
        self.customer.with_context(
            payment_dunning_contact_sync=True
        ).collection_other_contacts = "987654321, pagos@andina.example.com; llamar de 9 a 5"
        self.customer._move_other_contacts_to_points()
        self.assertEqual(self.points(self.customer, "mobile").mapped("value"), ["+51995955955", "+51987654321"])
        self.assertEqual(
            self.points(self.customer, "email").mapped("value"),
            ["cobranzas@andina.example.com", "pagos@andina.example.com"],
        )
        self.assertEqual(self.customer.collection_other_contacts, "llamar de 9 a 5", "the rest stays as notes")

    def test_install_gives_older_customers_their_contact_points(self):
        # a customer from before contact points: its two defaults only, and the old text
        self.env.flush_all()
        self.env.cr.execute(
            "DELETE FROM res_partner_collection_contact WHERE partner_id = %s; "
            "UPDATE res_partner SET collection_other_contacts = %s WHERE id = %s",
            (self.customer.id, "pagos@andina.example.com, 987654321", self.customer.id),
        )
        self.env.invalidate_all()
        self.env["res.partner.collection.contact"].init()
        self.assertEqual(self.points(self.customer, "mobile").mapped("value"), ["+51995955955", "+51987654321"])
        self.assertEqual(
            self.points(self.customer, "email").mapped("value"),
            ["cobranzas@andina.example.com", "pagos@andina.example.com"],
        )
        self.assertFalse(self.customer.collection_other_contacts)
        self.env["res.partner.collection.contact"].init()
        self.assertEqual(len(self.customer.collection_contact_ids), 4, "running it again adds nothing")


@tagged("post_install", "-at_install")
class TestCollectionRecipients(ContactPointsCase):
    def test_first_by_default_all_when_set(self):
        self.add(self.customer, "mobile", "987654321")
        self.add(self.customer, "email", "pagos@andina.example.com")
        self.assertEqual(self.customer._collection_recipients("whatsapp"), ["+51995955955"])
        self.assertEqual(self.customer._collection_recipients("email"), ["cobranzas@andina.example.com"])
        self.env["ir.config_parameter"].sudo().set_param("payment_dunning.contact_mode", "all")
        self.assertEqual(self.customer._collection_recipients("whatsapp"), ["+51995955955", "+51987654321"])
        self.assertEqual(
            self.customer._collection_recipients("email"),
            ["cobranzas@andina.example.com", "pagos@andina.example.com"],
        )
        self.assertEqual(self.customer_2._collection_recipients("email"), [], "no address, nobody")


@tagged("post_install", "-at_install")
class TestCommunicationsCount(ContactPointsCase):
    def test_the_smart_button_counts_the_customers_messages(self):
        order = self.create_order(100.0)
        other = self.create_order(50.0, partner=self.customer_2)
        notifications = self.env["payment.order.notification"].sudo()
        for channel in ("email", "whatsapp"):
            notifications.create(
                {"order_ids": [Command.set(order.ids)], "partner_id": self.customer.id,
                 "company_id": self.company.id, "channel": channel}
            )  # fmt: skip
        notifications.create(
            {"order_ids": [Command.set(other.ids)], "partner_id": self.customer_2.id,
             "company_id": self.company.id, "channel": "email"}
        )  # fmt: skip
        partners = (self.customer | self.customer_2).with_user(self.user)
        self.assertEqual(partners.mapped("collection_message_count"), [2, 1])
        action = self.customer.action_view_communications()
        self.assertEqual(self.env["payment.order.notification"].search_count(action["domain"]), 2)


@tagged("post_install", "-at_install")
class TestImportContactPoints(ContactPointsCase):
    def test_up_to_five_mobiles_and_emails_fill_contact_points(self):
        record = self.importer(
            CUSTOMER_HEADER
            + "DNI,47000001,Lucía,4141234567,58,987654321,987654321,lucia@example.com,lucia.f@example.com\n"
        )
        record.action_import()
        self.assertEqual((record.state, record.rows_create, record.rows_error), ("done", 1, 0))
        lucia = self.env["res.partner"].search([("document_number", "=", "47000001")])
        self.assertEqual(
            self.points(lucia, "mobile").mapped("value"), ["+584141234567", "+51987654321"], "the twin is one point"
        )
        self.assertEqual(self.points(lucia, "email").mapped("value"), ["lucia@example.com", "lucia.f@example.com"])
        self.assertEqual((lucia.collection_whatsapp, lucia.collection_email), ("+584141234567", "lucia@example.com"))
        self.assertFalse(lucia.collection_other_contacts)
        # a second file replaces the mobiles it gives and keeps the emails it does not give
        record = self.importer(
            "Tipo de documento,Número de documento,Celular_1,Celular_2\nDNI,47000001,999888777,912345678\n"
        )
        record.action_import()
        self.assertEqual(record.rows_update, 1)
        self.assertEqual(self.points(lucia, "mobile").mapped("value"), ["+51999888777", "+51912345678"])
        self.assertEqual(lucia.collection_whatsapp, "+51999888777")
        self.assertEqual(self.points(lucia, "email").mapped("value"), ["lucia@example.com", "lucia.f@example.com"])

    def test_every_mobile_is_checked(self):
        record = self.importer(CUSTOMER_HEADER + "DNI,47000002,Ana,995955955,,12,,,\n")
        record.action_check()
        self.assertEqual([(line, column) for line, column, _reason in self.problems(record)], [(2, "Celular_2")])

    def test_a_person_needs_a_mobile_and_a_company_an_email(self):
        record = self.importer(
            "Tipo de documento,Número de documento,Nombres,Celular_1,Correo1\n"
            "DNI,47000003,Sin celular,,ana@example.com\n"
            "DNI,47000004,Sin celular declarado,1,beto@example.com\n"
            "RUC,20600000009,Sin correo SAC,995955955,\n"
            "RUC,20600000010,Con correo SAC,,pagos@example.com\n"
            "RUC,20100000001,Andina (ya tiene correo),,\n"
        )
        record.action_check()
        problems = self.problems(record)
        self.assertEqual([(line, column) for line, column, _reason in problems], [(2, "Celular_1"), (4, "Correo1")])
        self.assertIn("needs a mobile", problems[0][2])
        self.assertIn("write it in Celular_1, or 1", problems[0][2])
        self.assertIn("needs an email", problems[1][2])
        self.assertEqual((record.rows_create, record.rows_update, record.rows_warning), (2, 1, 0))

    def test_a_customer_without_any_channel_is_a_warning(self):
        record = self.importer(
            "Tipo de documento,Número de documento,Nombres,Celular_1,Correo1\n"
            "DNI,47000005,Sin nada,1,\n"
            "Otros,C-77,Código interno,,\n"
        )
        record.action_check()
        self.assertEqual((record.state, record.rows_error, record.rows_warning), ("checked", 0, 2))
        warnings = self.problems(record, "warning")
        self.assertEqual([line for line, _column, _reason in warnings], [2, 3])
        self.assertIn("has no mobile and no email", warnings[0][2])
        record.action_import()
        self.assertEqual((record.state, record.rows_create), ("done", 2), "a warning does not stop the import")


@tagged("post_install", "-at_install")
class TestDocumentTypeMapping(ContactPointsCase):
    FILE = (
        "Tipo de documento,Número de documento,Nombres,Celular_1,Correo1\n"
        "Cédula,48000001,Ana,995955955,\n"
        "C.C.,48000002,Beto,995955956,\n"
        "RUC10,10480000031,Carla,995955957,carla@example.com\n"
        "DNI,48000004,Dina,995955958,\n"
    )

    def test_unknown_types_stop_at_the_mapping_step_then_are_remembered(self):
        record = self.importer(self.FILE)
        record.action_check()
        self.assertEqual(record.state, "mapping")
        self.assertEqual(set(record.unmapped_document_types.split(", ")), {"C.C.", "Cédula", "RUC10"})
        self.assertEqual(dict(record.document_type_ids.mapped(lambda line: (line.source, line.document_type))),
                         {"Cédula": False, "C.C.": False, "RUC10": False, "DNI": "dni"})  # fmt: skip
        self.assertFalse(self.env["res.partner"].search([("document_number", "like", "48000")]))
        with self.assertRaisesRegex(UserError, "imported as .*: .*Cédula"):
            record.action_check()
        targets = {"cedula": "dni", "cc": "ce", "ruc10": "ruc"}
        for line in record.document_type_ids.filtered(lambda line: line.key in targets):
            line.document_type = targets[line.key]
        record.action_check()
        self.assertEqual((record.state, record.rows_create, record.rows_error), ("checked", 4, 0))
        record.action_import()
        carla = self.env["res.partner"].search([("document_number", "=", "10480000031")])
        self.assertEqual((carla.document_type, carla.is_company), ("ruc", True))
        self.assertEqual(self.env["res.partner"].search([("document_number", "=", "48000002")]).document_type, "ce")
        # the next file of the company is mapped at once, and the mapping is pre-filled
        again = self.importer(self.FILE.replace("4800000", "4900000").replace("10480000031", "10490000031"))
        again.action_check()
        self.assertEqual((again.state, again.rows_create), ("checked", 4))
        self.assertEqual(sorted(again.document_type_ids.mapped("document_type")), ["ce", "dni", "dni", "ruc"])
        # another company remembers nothing of it
        other = self.importer(self.FILE, company=self.company_2)
        other.action_check()
        self.assertEqual(other.state, "mapping")

    def test_a_mapping_changed_on_the_import_is_remembered(self):
        self.env["payment.dunning.document.map"].create(
            {"company_id": self.company.id, "source": "Cédula", "key": "cedula", "document_type": "dni"}
        )
        record = self.importer("Tipo de documento,Número de documento,Celular_1\nCédula,48000009,1\n")
        record.action_check()
        self.assertEqual(record.state, "checked")
        record.document_type_ids.document_type = "other"
        record.action_import()
        self.assertEqual(self.env["res.partner"].search([("document_number", "=", "48000009")]).document_type, "other")
        stored = self.env["payment.dunning.document.map"].search([("company_id", "=", self.company.id)])
        self.assertEqual(stored.mapped("document_type"), ["other"])
