import base64
import io
from datetime import date

from odoo.tests import tagged

from .common import PaymentDunningCase, stored_values

ORDER_HEADER = (
    "Tipo de documento,Número de documento,Código de pago,Cuota,Monto (OP),Cargos e Intereses (OP),"
    "Fecha de vencimiento,Saldo,Concepto"
)


class ImportCase(PaymentDunningCase):
    def importer(self, kind, content, filename="file.csv", mode="all"):
        if isinstance(content, str):
            content = content.encode("utf-8")
        return self.env["payment.dunning.import"].create(
            {
                "kind": kind,
                "file": base64.b64encode(content),
                "filename": filename,
                "mode": mode,
                "company_id": self.company.id,
            }
        )

    def orders_file(self, *rows):
        return "\n".join((ORDER_HEADER, *rows)) + "\n"

    def imported_orders(self):
        return self.env["payment.order"].search([("origin", "=", "import")])

    def errors(self, record):
        return [(error.line, error.column, error.reason) for error in record.error_ids]


@tagged("post_install", "-at_install")
class TestCustomerImport(ImportCase):
    def test_spec_example_mobile_and_country_code(self):
        content = (
            "Tipo de documento;Número de documento;Nombres;Apellidos;Celular_1;Celular_1 código país;"
            "Celular_2;Correo1;Correo2\n"
            "DNI;47000001;Lucía;Fernández;4141234567;58;987654321;lucia@example.com;lucia.f@example.com\n"
            "RUC;20600000001;Ferretería El Sol SAC;;1;;;ventas@elsol.example.com;\n"
        )
        record = self.importer("customers", "\ufeff" + content)  # a BOM, and semicolons
        record.action_import()
        self.assertEqual((record.state, record.rows_create, record.rows_error), ("done", 2, 0))
        lucia = self.env["res.partner"].search([("document_number", "=", "47000001")])
        self.assertEqual(lucia.name, "Lucía Fernández")
        self.assertEqual(lucia.document_type, "dni")
        self.assertEqual(lucia.collection_whatsapp, "+584141234567", "584141234567 as 4141234567 + 58")
        self.assertEqual(lucia.collection_email, "lucia@example.com")
        points = lucia.collection_contact_ids.sorted(lambda point: (point.kind, point.sequence))
        self.assertEqual(
            points.mapped("value"), ["lucia@example.com", "lucia.f@example.com", "+584141234567", "+51987654321"]
        )
        shop = self.env["res.partner"].search([("document_number", "=", "20600000001")])
        self.assertFalse(shop.collection_whatsapp, "a mobile of 1 means none")
        self.assertTrue(shop.is_company)

    def test_customer_is_updated_by_document_never_by_name(self):
        content = (
            "Tipo de documento,Número de documento,Nombres,Correo1\n"
            "RUC,20100000001,Andina Telecom SAC,x@andina.example.com\n"
        )
        record = self.importer("customers", content)
        record.action_import()
        self.assertEqual((record.rows_create, record.rows_update), (0, 1))
        self.assertEqual(self.customer.name, "Andina Telecom SAC")
        self.assertEqual(self.customer.collection_email, "x@andina.example.com")

    def test_bad_contacts_are_reported_with_line_and_column(self):
        content = (
            "Tipo de documento,Número de documento,Celular_1,Correo1\n"
            "DNI,1111,414-123-4567,a@example.com\n"
            "DNI,2222,4141234567,no es correo\n"
            "DNI,3333,,\n"
        )
        record = self.importer("customers", content)
        record.action_check()
        self.assertEqual(
            [(line, column) for line, column, _reason in self.errors(record)],
            [(2, "Celular_1"), (3, "Correo1"), (4, "Celular_1")],
        )
        self.assertIn("digits only", self.errors(record)[0][2])


@tagged("post_install", "-at_install")
class TestOrderImport(ImportCase):
    def test_same_code_with_two_installments_creates_two_orders(self):
        content = self.orders_file(
            "RUC,20100000001,001-001-00123456,1,10000.12,,2026-12-31,,Préstamo",
            "RUC,20100000001,001-001-00123456,2,10000.12,15.50,31/01/2027,,Préstamo",
        )
        record = self.importer("orders", content)
        record.action_import()
        self.assertEqual((record.state, record.rows_create, record.rows_error), ("done", 2, 0))
        orders = self.imported_orders().sorted("installment")
        self.assertEqual(orders.mapped("installment"), [1, 2])
        self.assertEqual(orders.mapped("payment_code"), ["001-001-00123456"] * 2)
        self.assertEqual(orders.mapped("due_date"), [date(2026, 12, 31), date(2027, 1, 31)])
        self.assertEqual(orders[0].amount_total, 10000.12)
        self.assertEqual(orders[0].charges_amount, 0.0, "a blank optional column is left blank, not read")
        self.assertEqual(orders[1].amount_total, 10015.62)
        self.assertEqual(orders[1].balance, 10015.62, "no balance column value: the whole total is owed")
        self.assertEqual(orders.partner_id, self.customer)
        self.assertEqual(set(orders.mapped("state")), {"pending"})

    def test_imported_order_matches_a_created_one(self):
        record = self.importer("orders", self.orders_file("RUC,20100000001,F-1,1,250.00,12.50,2026-12-15,120.00,Fibra"))
        record.action_import()
        imported = self.imported_orders()
        created = self.orm_created_order(
            {
                "partner_id": self.customer.id,
                "due_date": "2026-12-15",
                "concept": "Fibra",
                "payment_code": "F-2",
                "origin": "import",
                "charges_amount": 12.5,
                "amount": 250.0,
            }
        )
        created._set_balance(120.0)
        self.env.invalidate_all()
        skip = {"id", "name", "payment_code", "create_date", "write_date", "order_id"}

        self.assertEqual(stored_values(imported, skip), stored_values(created, skip))
        self.assertEqual(stored_values(imported.line_ids, skip), stored_values(created.line_ids, skip))

    def test_existing_key_updates_only_balance_and_charges(self):
        order = self.create_order(
            500.0, due_date="2026-12-01", payment_code="LOAN-7", installment=3, concept="Préstamo"
        )
        content = self.orders_file("RUC,20100000001,LOAN-7,3,500.00,20.00,01/12/2026,300.00,Préstamo")
        record = self.importer("orders", content)
        record.action_import()
        self.assertEqual((record.rows_create, record.rows_update, record.rows_error), (0, 1, 0), self.errors(record))
        self.assertEqual(order.amount, 500.0)
        self.assertEqual(order.due_date, date(2026, 12, 1))
        self.assertEqual((order.charges_amount, order.balance), (20.0, 300.0))
        self.assertEqual(order.state, "pending")
        # the same file again changes nothing
        record = self.importer("orders", content)
        record.action_import()
        self.assertEqual((record.rows_update, record.rows_unchanged, record.rows_error), (0, 1, 0))

    def test_existing_key_with_other_terms_is_a_row_error(self):
        order = self.create_order(500.0, due_date="2026-12-01", payment_code="LOAN-7", installment=3)
        content = self.orders_file("RUC,20100000001,LOAN-7,3,999.00,20.00,2027-05-05,300.00,Otro concepto")
        record = self.importer("orders", content)
        record.action_import()
        self.assertEqual((record.state, record.rows_update, record.rows_error), ("failed", 0, 1))
        ((line, column, reason),) = self.errors(record)
        self.assertEqual((line, column), (2, "Monto (OP)"))
        self.assertIn(f"The order {order.name} already exists with another amount, due date, concept", reason)
        self.assertIn("cancel it and import it again", reason)
        self.assertEqual((order.amount, order.charges_amount, order.balance), (500.0, 0.0, 500.0))
        self.assertEqual(order.due_date, date(2026, 12, 1))

    def test_balance_zero_pays_and_cancels_queued_messages(self):
        order = self.create_order(500.0, due_date="2026-12-01", payment_code="LOAN-8")
        template = self.env["dunning.template"].create({"name": "Aviso", "body": "Hola", "channel_whatsapp": False})
        notification = self.env["payment.order.notification"]._queue(template, order)
        record = self.importer("orders", self.orders_file("RUC,20100000001,LOAN-8,1,500.00,,2026-12-01,0,"))
        record.action_import()
        self.assertEqual(order.state, "paid")
        self.assertEqual(order.balance, 0.0)
        self.assertEqual(notification.state, "cancelled")

    def test_two_line_file_with_unknown_customer(self):
        content = self.orders_file(
            "RUC,20100000001,A-1,1,100.00,,2026-12-01,,",
            "DNI,99999999,A-2,1,100.00,,2026-12-01,,",
        )
        record = self.importer("orders", content)
        record.action_import()
        self.assertEqual(record.state, "failed", "all or nothing: one bad row, nothing written")
        self.assertFalse(self.imported_orders())
        ((line, column, reason),) = self.errors(record)
        self.assertEqual((line, column), (3, "Número de documento"))
        self.assertIn("customer does not exist", reason)
        record = self.importer("orders", content, mode="skip")
        record.action_import()
        self.assertEqual((record.state, record.rows_create, record.rows_error), ("done", 1, 1))
        self.assertEqual(self.imported_orders().payment_code, "A-1")

    def test_dry_run_writes_nothing(self):
        order = self.create_order(500.0, due_date="2026-12-01", payment_code="LOAN-9")
        content = self.orders_file(
            "RUC,20100000001,NEW-1,1,100.00,,2026-12-01,,", "RUC,20100000001,LOAN-9,1,500.00,,2026-12-01,0,"
        )
        record = self.importer("orders", content)
        record.action_check()
        self.assertEqual(
            (record.state, record.rows_create, record.rows_update, record.rows_error), ("checked", 1, 1, 0)
        )
        self.assertFalse(self.imported_orders())
        self.assertEqual(order.state, "pending")

    def test_every_validation_error(self):
        content = self.orders_file(
            "RUC,20100000001,E-1,1,10000,12,,2026-12-01,,",  # 10 columns: amount "10000,12" split: still caught
            "RUC,20100000001,E-2,1,abc,,2026-12-01,,",
            "RUC,20100000001,E-3,0,100,,2026-12-01,,",
            "RUC,20100000001,E-4,1,100,,31.12.2026,,",
            "RUC,20100000001,,1,100,,2026-12-01,,",
            "RUC,20100000001,E-6,1,-5,,2026-12-01,,",
            "RUC,20100000001,E-7,1,100,,2026-12-01,,",
            "RUC,20100000001,E-7,1,100,,2026-12-01,,",
            'RUC,20100000001,E-9,1,"1,000.50",,2026-12-01,,',
        )
        record = self.importer("orders", content)
        record.action_check()
        errors = self.errors(record)
        self.assertEqual(
            [(line, column) for line, column, _reason in errors],
            [
                (2, "Fecha de vencimiento"),
                (3, "Monto (OP)"),
                (4, "Cuota"),
                (5, "Fecha de vencimiento"),
                (6, "Código de pago"),
                (7, "Monto (OP)"),
                (9, "Código de pago"),
                (10, "Monto (OP)"),
            ],
        )
        reasons = {line: reason for line, _column, reason in errors}
        self.assertIn("not a number", reasons[3])
        self.assertIn("whole number", reasons[4])
        self.assertIn("not a date", reasons[5])
        self.assertIn("required", reasons[6])
        self.assertIn("negative", reasons[7])
        self.assertIn("line 8", reasons[9])
        self.assertIn("no commas", reasons[10])
        csv_action = record.action_download_errors()
        attachment = self.env["ir.attachment"].browse(int(csv_action["url"].split("/")[3].split("?")[0]))
        self.assertEqual(attachment.raw.decode("utf-8-sig").count("\n"), len(errors) + 1)

    def test_xlsx_file(self):
        import openpyxl

        workbook = openpyxl.Workbook()
        sheet = workbook.active
        sheet.append(ORDER_HEADER.split(","))
        sheet.append(["RUC", 20100000001, "X-1", 1, 150.75, None, date(2026, 12, 20), None, "Servicio"])
        buffer = io.BytesIO()
        workbook.save(buffer)
        record = self.importer("orders", buffer.getvalue(), filename="orders.xlsx")
        record.action_import()
        self.assertEqual((record.rows_create, record.rows_error), (1, 0), self.errors(record))
        order = self.imported_orders()
        self.assertEqual((order.amount, order.due_date, order.payment_code), (150.75, date(2026, 12, 20), "X-1"))

    def test_external_api_returns_the_same_report(self):
        report = self.env["payment.dunning.import"].import_rows(
            "orders",
            [
                {"Tipo de documento": "RUC", "Número de documento": "20100000001", "Código de pago": "API-1",
                 "Monto (OP)": "80.5", "Fecha de vencimiento": "2026-12-01"},
                {"document type": "DNI", "document number": "1", "payment code": "API-2",
                 "amount": "10", "due date": "2026-12-01"},
            ],
            mode="skip",
        )  # fmt: skip
        self.assertEqual((report["rows"], report["created"], report["updated"]), (2, 1, 0))
        self.assertEqual(report["errors"][0]["line"], 3)
        self.assertIn("customer does not exist", report["errors"][0]["reason"])
        self.assertEqual(self.imported_orders().amount, 80.5)

    def test_only_managers_import(self):
        from odoo.exceptions import AccessError

        with self.assertRaises(AccessError):
            self.env["payment.dunning.import"].with_user(self.user).import_rows("orders", [])
