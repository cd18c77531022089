import base64
import csv
import io
import re
import time
import tracemalloc
import zipfile
from datetime import date
from unittest.mock import patch

import openpyxl

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from ..models import payment_dunning_import as import_module
from .common import PaymentDunningCase
from .test_import import ORDER_HEADER, ImportCase

GOOD_ROW = "RUC,20100000001,GOOD-1,1,100.00,,2026-12-01,,Internet"


def rewrite_member(content, member, change):
    """The zip ``content`` with ``member`` passed through ``change`` (bytes -> bytes)."""
    source = zipfile.ZipFile(io.BytesIO(content))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info.filename, change(data) if info.filename == member else data)
    return buffer.getvalue()


def xlsx(rows, dimension=None):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    content = buffer.getvalue()
    if dimension:
        content = rewrite_member(
            content,
            "xl/worksheets/sheet1.xml",
            lambda xml: re.sub(rb'<dimension ref="[^"]*"/>', f'<dimension ref="{dimension}"/>'.encode(), xml),
        )
    return content


def order_row(code, amount=150.75, installment=1, **values):
    row = ["RUC", "20100000001", code, installment, amount, None, date(2026, 12, 20), None, "Servicio"]
    for index, name in enumerate(("document_type", "document_number", "payment_code", "installment", "amount")):
        row[index] = values.get(name, row[index])
    return row


@tagged("post_install", "-at_install")
class TestImportHostile(ImportCase):
    """Hostile files are refused with a clear error, in bounded time and memory, writing nothing."""

    def assert_refused(self, content, message, filename="file.csv", kind="orders"):
        record = self.importer(kind, content, filename=filename)
        with self.assertRaisesRegex(UserError, message):
            record.action_check()
        with self.assertRaisesRegex(UserError, message):
            record.action_import()
        self.assertFalse(self.imported_orders())
        return record

    # ------------------------------------------------------------------ limits

    def test_file_above_the_upload_limit(self):
        content = self.orders_file(*[GOOD_ROW.replace("GOOD-1", f"G-{n}") for n in range(40)])
        with patch.object(import_module, "MAX_FILE_BYTES", 1024):
            self.assert_refused(content, r"The file is [\d.]+ MB: the limit is 0.0 MB")
        record = self.importer("orders", content)
        record.action_import()
        self.assertEqual(record.rows_create, 40)

    def test_million_column_csv_is_refused_quickly_in_little_memory(self):
        content = ("Tipo de documento," + ",".join(f"c{n}" for n in range(1_000_000)) + "\nDNI,1\n").encode()
        record = self.importer("orders", content)
        record.file  # noqa: B018 - read before measuring: what the attachment costs is not the import's
        tracemalloc.start()
        start = time.perf_counter()
        try:
            with self.assertRaisesRegex(UserError, "Line 1 has more than 100 columns"):
                record.action_check()
            elapsed = time.perf_counter() - start
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertLess(elapsed, 3.0)
        self.assertLess(peak, 3 * len(content), f"{peak} bytes at the peak for a file of {len(content)}")
        # the same over RPC: one row of a million keys
        with self.assertRaisesRegex(UserError, "Line 2 has more than 100 columns"):
            self.env["payment.dunning.import"].import_rows("orders", [dict.fromkeys(map(str, range(1_000_000)))])

    def test_columns_limit_on_header_and_rows(self):
        header = ",".join(f"Column {n}" for n in range(2000))
        self.assert_refused(f"{header}\n{GOOD_ROW}\n", "Line 1 has more than 100 columns")
        self.assert_refused(f"{ORDER_HEADER}\n{GOOD_ROW}{',x' * 150}\n", "Line 2 has more than 100 columns")
        wide = xlsx([[f"Column {n}" for n in range(150)], order_row("X-1")])
        self.assert_refused(wide, "Line 1 has more than 100 columns", filename="wide.xlsx")
        # trailing separators are no columns
        record = self.importer("orders", f"{ORDER_HEADER}{',' * 150}\n{GOOD_ROW}{',' * 150}\n")
        record.action_import()
        self.assertEqual((record.rows_create, record.rows_error), (1, 0))

    def test_quote_left_open_is_refused_without_reading_the_file_into_one_cell(self):
        content = f'{ORDER_HEADER}\n{GOOD_ROW}\nRUC,"20100000001,X,1\n' + "x" * 300_000 + "\n"
        self.assert_refused(content, "Line 3 is longer than 100,300 characters: check its separators")

    def test_rows_limit(self):
        rows = [GOOD_ROW.replace("GOOD-1", f"G-{n}") for n in range(4)]
        with patch.object(import_module, "MAX_ROWS", 3):
            self.assert_refused(self.orders_file(*rows), "The file has more than 3 rows")
            sheet = xlsx([ORDER_HEADER.split(","), *(order_row(f"X-{n}") for n in range(4))])
            self.assert_refused(sheet, "The file has more than 3 rows", filename="rows.xlsx")
            api_rows = [{"Tipo de documento": "RUC"}] * 4
            with self.assertRaisesRegex(UserError, "The file has more than 3 rows"):
                self.env["payment.dunning.import"].import_rows("orders", api_rows)
            # blank lines are no rows
            record = self.importer("orders", self.orders_file(*rows[:3], "", ",,,"))
            record.action_import()
            self.assertEqual((record.rows_total, record.rows_create), (3, 3))

    # ------------------------------------------------------------------ XLSX

    def test_xlsx_stale_dimension_loses_no_row(self):
        content = xlsx([ORDER_HEADER.split(","), *(order_row(f"X-{n}") for n in range(3))], dimension="A1:B2")
        record = self.importer("orders", content, filename="stale.xlsx")
        record.action_import()
        self.assertEqual((record.rows_total, record.rows_create, record.rows_error), (3, 3, 0), self.errors(record))

    def test_xlsx_declaring_the_whole_sheet_is_read_quickly(self):
        content = xlsx([ORDER_HEADER.split(","), order_row("X-1"), order_row("X-2")], dimension="A1:XFD1048576")
        self.assertLess(len(content), 10_000)
        record = self.importer("orders", content, filename="huge.xlsx")
        start = time.perf_counter()
        record.action_import()
        self.assertLess(time.perf_counter() - start, 3.0)
        self.assertEqual((record.rows_total, record.rows_create), (2, 2))
        self.assertEqual(self.imported_orders().mapped("amount"), [150.75, 150.75])

    def test_xlsx_with_a_cell_on_the_last_row_stops_at_the_rows_limit(self):
        workbook = openpyxl.Workbook()
        workbook.active.append(ORDER_HEADER.split(","))
        workbook.active.append(order_row("X-1"))
        workbook.active.cell(row=1_048_576, column=16_384, value="far away")
        buffer = io.BytesIO()
        workbook.save(buffer)
        start = time.perf_counter()
        self.assert_refused(buffer.getvalue(), "The file has more than 200,000 rows", filename="far.xlsx")
        self.assertLess(time.perf_counter() - start, 10.0)

    def test_xlsx_zip_bomb(self):
        # a cell of 3 million characters (more than a spreadsheet writes) packed into a few kB
        bomb = rewrite_member(
            xlsx([ORDER_HEADER.split(","), order_row("X-1")]),
            "xl/worksheets/sheet1.xml",
            lambda xml: xml.replace(b"<t>Servicio</t>", b"<t>" + b"A" * 3_000_000 + b"</t>"),
        )
        self.assertLess(len(bomb), 50_000)
        self.assert_refused(bomb, "compressed more than 100 times, as in a zip bomb", filename="bomb.xlsx")
        content = xlsx([ORDER_HEADER.split(","), order_row("X-1")])
        with patch.object(import_module, "MAX_XLSX_UNCOMPRESSED_BYTES", 10_000):
            self.assert_refused(content, "once uncompressed: the limit is", filename="big.xlsx")

    def test_broken_xlsx_files(self):
        self.assert_refused(b"PK\x03\x04 not really a zip", "The XLSX file cannot be read", filename="x.xlsx")
        # a numeric cell no spreadsheet writes
        content = rewrite_member(
            xlsx([ORDER_HEADER.split(","), order_row("X-1")]),
            "xl/worksheets/sheet1.xml",
            lambda xml: xml.replace(b"<v>150.75</v>", b"<v>NaN</v>"),
        )
        self.assert_refused(content, "The XLSX file cannot be read at line 2", filename="nan.xlsx")

    # ------------------------------------------------------------------ numbers

    def test_hostile_numbers_are_row_errors_naming_the_column(self):
        rows = [
            ("RUC,20100000001,N-1,1,NaN,,2026-12-01,,", "Monto (OP)", "not a number"),
            ("RUC,20100000001,N-2,1,Infinity,,2026-12-01,,", "Monto (OP)", "not a number"),
            ("RUC,20100000001,N-3,1,inf,,2026-12-01,,", "Monto (OP)", "not a number"),
            ("RUC,20100000001,N-4,1,1e400,,2026-12-01,,", "Monto (OP)", "not a number"),
            ("RUC,20100000001,N-5,1,1000000000000.01,,2026-12-01,,", "Monto (OP)", "above the largest amount"),
            ("RUC,20100000001,N-6,1,²,,2026-12-01,,", "Monto (OP)", "not a number"),
            ("RUC,20100000001,N-7,1,١٠٠,,2026-12-01,,", "Monto (OP)", "not a number"),
            ("RUC,20100000001,N-8,99999999999,100,,2026-12-01,,", "Cuota", "from 1 to 9999"),
            ("RUC,20100000001,N-9,²,100,,2026-12-01,,", "Cuota", "from 1 to 9999"),
            ("RUC,20100000001,N-10,٣,100,,2026-12-01,,", "Cuota", "from 1 to 9999"),
            ("RUC,20100000001,N-11,1,100,nan,2026-12-01,,", "Cargos e Intereses (OP)", "not a number"),
            ("RUC,20100000001,N-12,1,100,,2026-12-01,-inf,", "Saldo", "not a number"),
            ("RUC,20100000001,N-13,1,100,,٢٠٢٦-١٢-٠١,,", "Fecha de vencimiento", "not a date"),
            ("RUC,20100000001,N-14,1,0.001,,2026-12-01,,", "Monto (OP)", "greater than zero"),
        ]
        content = self.orders_file(GOOD_ROW, *(row for row, _column, _reason in rows))
        for mode in ("all", "skip"):
            record = self.importer("orders", content, mode=mode)
            record.action_check()
            errors = self.errors(record)
            self.assertEqual(
                [(line, column) for line, column, _r in errors], [(n, c) for n, (_r, c, _m) in enumerate(rows, 3)]
            )
            for (_line, column, reason), (_row, _column, expected) in zip(errors, rows, strict=True):
                self.assertIn(expected, reason)
                if expected not in ("not a date", "greater than zero"):
                    self.assertIn(column, reason, "the reason names the column")
            record.action_import()
            self.assertEqual(record.rows_error, len(rows))
            self.assertEqual(self.imported_orders().mapped("payment_code"), [] if mode == "all" else ["GOOD-1"])

    def test_hostile_numbers_over_rpc(self):
        def row(code, **values):
            return {
                "Tipo de documento": "RUC",
                "Número de documento": "20100000001",
                "Código de pago": code,
                "Monto (OP)": 100,
                "Fecha de vencimiento": "2026-12-01",
                **values,
            }

        rows = [
            row("R-1", **{"Monto (OP)": float("nan")}),
            row("R-2", **{"Monto (OP)": float("inf")}),
            row("R-3", **{"Monto (OP)": 1e300}),
            row("R-4", **{"Monto (OP)": "1e400"}),
            row("R-5", Cuota=99999999999),
            row("R-6", Cuota=2.5),
            row("R-7", Saldo=float("-inf")),
            row("R-8", **{"Monto (OP)": [1, 2]}),
            row("R-9", Concepto=False),
        ]
        model = self.env["payment.dunning.import"]
        report = model.import_rows("orders", rows, mode="skip", dry_run=True)
        self.assertEqual([error["line"] for error in report["errors"]], list(range(2, 10)))
        self.assertEqual(
            [error["column"] for error in report["errors"]],
            ["Monto (OP)"] * 4 + ["Cuota", "Cuota", "Saldo", "Monto (OP)"],
        )
        self.assertFalse(self.imported_orders())
        report = model.import_rows("orders", rows, mode="skip")
        self.assertEqual((report["created"], len(report["errors"])), (1, 8))
        self.assertEqual(self.imported_orders().payment_code, "R-9")
        report = model.import_rows("orders", [row("R-10"), rows[0]], mode="all")
        self.assertEqual((report["created"], len(report["errors"])), (1, 1), "counted, not written")
        self.assertEqual(self.imported_orders().payment_code, "R-9")

    def test_hostile_numbers_in_xlsx(self):
        content = xlsx(
            [
                ORDER_HEADER.split(","),
                order_row("X-1"),
                order_row("X-2", amount="NaN"),
                order_row("X-3", amount="1e400"),
                order_row("X-4", amount=1e13),
                order_row("X-5", installment=99999999999),
                order_row("X-6", installment="٣"),
                order_row("X-7", amount=float("inf")),  # openpyxl writes it blank
            ]
        )
        record = self.importer("orders", content, filename="numbers.xlsx", mode="skip")
        record.action_import()
        self.assertEqual(
            [(line, column) for line, column, _reason in self.errors(record)],
            [(3, "Monto (OP)"), (4, "Monto (OP)"), (5, "Monto (OP)"), (6, "Cuota"), (7, "Cuota"), (8, "Monto (OP)")],
        )
        self.assertEqual(self.imported_orders().payment_code, "X-1")

    def test_characters_that_cannot_be_stored_are_row_errors(self):
        content = self.orders_file(GOOD_ROW, "RUC,2010\x000000001,N-1,1,5,,2026-12-01,,")
        record = self.importer("orders", content, mode="skip")
        record.action_import()
        ((line, column, reason),) = self.errors(record)
        self.assertEqual((line, column), (3, "Número de documento"))
        self.assertIn("not text", reason)
        self.assertEqual(record.error_ids.value, "20100000001", "stored without the NUL")
        self.assertEqual(self.imported_orders().payment_code, "GOOD-1")
        report = self.env["payment.dunning.import"].import_rows(
            "customers",
            [{"Tipo de documento": "DNI", "Número de documento": "1\ud800", "Nombres\x00": "x"}],
            dry_run=True,
        )
        self.assertEqual([error["column"] for error in report["errors"]], ["Número de documento"])

    # ------------------------------------------------------------------ headers and the error file

    def test_columns_giving_the_same_field_are_refused(self):
        content = "Tipo de documento,Número de documento,Código de pago,Monto (OP),Fecha de vencimiento,Monto\n"
        self.assert_refused(content + GOOD_ROW + "\n", 'The columns "Monto \\(OP\\)" and "Monto" \\(line 1\\)')
        self.assert_refused(
            "Tipo de documento,Tipo de documento,Número de documento\nDNI,DNI,1\n",
            'The columns "Tipo de documento" and "Tipo de documento"',
            kind="customers",
        )
        sheet = xlsx([["Tipo de documento", "Número de documento", "Correo", "Correo1"], ["DNI", "1", "a@b.com", ""]])
        self.assert_refused(sheet, 'The columns "Correo" and "Correo1"', filename="twins.xlsx", kind="customers")
        row = {"Tipo de documento": "DNI", "document type": "DNI", "Número de documento": "1"}
        with self.assertRaisesRegex(UserError, 'The columns "Tipo de documento" and "document type" \\(line 2\\)'):
            self.env["payment.dunning.import"].import_rows("customers", [row])

    def test_error_file_neutralises_formulas(self):
        content = self.orders_file(
            "RUC,20100000001,F-1,1,=1+2,,2026-12-01,,",
            "RUC,20100000001,F-2,1,-5,,2026-12-01,,",
            "DNI,@SUM(A1),F-3,1,5,,2026-12-01,,",
            "RUC,20100000001,F-4,1,\"+cmd|' /C calc'!A0\",,2026-12-01,,",
            'RUC,20100000001,F-5,1,"\t=1",,2026-12-01,,',
        )
        record = self.importer("orders", content)
        record.action_check()
        action = record.action_download_errors()
        attachment = self.env["ir.attachment"].browse(int(action["url"].split("/")[3].split("?")[0]))
        lines = list(csv.reader(io.StringIO(attachment.raw.decode("utf-8-sig"))))
        values = [line[2] for line in lines[1:]]
        self.assertEqual(values, ["'=1+2", "'-5", "'@SUM(A1)", "'+cmd|' /C calc'!A0", "'=1"])
        for line in lines[1:]:
            for cell in line[1:]:
                self.assertFalse(cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell)

    # ------------------------------------------------------------------ update rules

    def test_balance_above_amount_and_charges_is_a_row_error(self):
        order = self.create_order(500.0, due_date="2026-12-01", payment_code="B-2")
        content = self.orders_file(
            "RUC,20100000001,B-1,1,100.00,50.00,2026-12-01,150.01,",
            "RUC,20100000001,B-2,1,500.00,,2026-12-01,500.01,",
            "RUC,20100000001,B-3,1,100.00,50.00,2026-12-01,150.00,",
        )
        record = self.importer("orders", content, mode="skip")
        record.action_import()
        errors = self.errors(record)
        self.assertEqual([(line, column) for line, column, _reason in errors], [(2, "Saldo"), (3, "Saldo")])
        self.assertIn("above the amount plus charges and interest", errors[0][2])
        self.assertEqual(self.imported_orders().payment_code, "B-3")
        self.assertEqual(order.balance, 500.0)

    def test_a_row_never_changes_the_order_of_another_customer(self):
        other = self.create_order(500.0, due_date="2026-12-01", partner=self.customer_2, payment_code="SHARED")
        record = self.importer("orders", self.orders_file("RUC,20100000001,SHARED,1,500.00,,2026-12-01,0,"))
        record.action_import()
        ((_line, column, reason),) = self.errors(record)
        self.assertEqual(column, "Código de pago")
        self.assertIn(f"is the order {other.name} of another customer", reason)
        self.assertEqual((other.state, other.balance), ("pending", 500.0))
        report = self.env["payment.dunning.import"].import_rows(
            "orders",
            [
                {
                    "document type": "RUC",
                    "document number": "20100000001",
                    "payment code": "SHARED",
                    "amount": "500",
                    "due date": "2026-12-01",
                    "balance": "0",
                }
            ],
        )
        self.assertIn("another customer", report["errors"][0]["reason"])
        self.assertEqual(other.state, "pending")

    def test_known_order_with_other_terms(self):
        self.create_order(500.0, due_date="2026-12-01", payment_code="T", concept="Fibra")
        cases = [
            ("RUC,20100000001,T,1,400.00,,2026-12-01,100,Fibra", "Monto (OP)", "another amount:"),
            ("RUC,20100000001,T,1,500.00,,2026-12-02,100,Fibra", "Fecha de vencimiento", "another due date:"),
            ("RUC,20100000001,T,1,500.00,,2026-12-01,100,Cable", "Concepto", "another concept:"),
            ("RUC,20100000001,T,1,500.00,,2026-12-01,100,", "Concepto", "another concept:"),
        ]
        for row, column, message in cases:
            with self.subTest(row=row):
                record = self.importer("orders", self.orders_file(row))
                record.action_import()
                ((_line, error_column, reason),) = self.errors(record)
                self.assertEqual(error_column, column)
                self.assertIn(message, reason)
                self.assertIn("cancel it and import it again", reason)
        order = self.env["payment.order"].search([("payment_code", "=", "T")])
        self.assertEqual((order.balance, order.state), (500.0, "pending"))
        # without a concept column the concept is not compared
        content = "Tipo de documento,Número de documento,Código de pago,Monto,Fecha de vencimiento,Saldo\n"
        record = self.importer("orders", content + "RUC,20100000001,T,500,2026-12-01,120\n")
        record.action_import()
        self.assertEqual((record.rows_update, record.rows_error), (1, 0))
        self.assertEqual(order.balance, 120.0)

    def test_closed_orders_are_not_updated(self):
        paid = self.create_order(500.0, due_date="2026-12-01", payment_code="P")
        paid.action_pay()
        cancelled = self.create_order(300.0, due_date="2026-12-01", payment_code="C")
        cancelled.action_cancel()
        record = self.importer(
            "orders",
            self.orders_file("RUC,20100000001,P,1,500.00,,2026-12-01,0,", "RUC,20100000001,C,1,300.00,,2026-12-01,,"),
        )
        record.action_import()
        self.assertEqual((record.state, record.rows_unchanged, record.rows_error), ("done", 2, 0))
        content = self.orders_file(
            "RUC,20100000001,P,1,500.00,,2026-12-01,100,",
            "RUC,20100000001,C,1,300.00,10,2026-12-01,,",
        )
        record = self.importer("orders", content, mode="skip")
        record.action_import()
        errors = self.errors(record)
        self.assertEqual(
            [(line, column) for line, column, _reason in errors], [(2, "Saldo"), (3, "Cargos e Intereses (OP)")]
        )
        self.assertIn(f"The order {paid.name} is paid", errors[0][2])
        self.assertIn(f"The order {cancelled.name} is cancelled", errors[1][2])
        self.assertEqual((paid.state, paid.balance), ("paid", 0.0))
        self.assertEqual((cancelled.state, cancelled.charges_amount), ("cancelled", 0.0))

    def test_blank_concept_stays_empty(self):
        record = self.importer("orders", self.orders_file("RUC,20100000001,E-1,1,100.00,,2026-12-01,,"))
        record.action_import()
        self.env["payment.dunning.import"].import_rows(
            "orders",
            [
                {"Tipo de documento": "RUC", "Número de documento": "20100000001", "Código de pago": "E-2",
                 "Monto (OP)": 5, "Fecha de vencimiento": "2026-12-01", "Concepto": False},
                {"Tipo de documento": "RUC", "Número de documento": "20100000001", "Código de pago": "E-3",
                 "Monto (OP)": 5, "Fecha de vencimiento": "2026-12-01", "Concepto": None},
            ],
        )  # fmt: skip
        orders = self.imported_orders()
        self.assertEqual(len(orders), 3)
        self.env.flush_all()
        self.env.cr.execute("SELECT count(*) FROM payment_order WHERE id = ANY(%s) AND concept IS NULL", [orders.ids])
        self.assertEqual(self.env.cr.fetchone()[0], 3, "NULL, not the text 'false'")
        self.assertEqual(sorted(orders.line_ids.mapped("name")), ["E-1", "E-2", "E-3"])

    def test_archived_customer_gets_no_order(self):
        self.customer.active = False
        record = self.importer("orders", self.orders_file(GOOD_ROW), mode="skip")
        record.action_import()
        ((_line, column, reason),) = self.errors(record)
        self.assertEqual(column, "Número de documento")
        self.assertIn("The customer with the document Tax ID (RUC) 20100000001 is archived", reason)
        self.assertFalse(self.env["payment.order"].with_context(active_test=False).search([("origin", "=", "import")]))

    def test_messages_name_the_document_type_as_users_see_it(self):
        content = self.orders_file("DNI,99999999,A-1,1,100.00,,2026-12-01,,", "Pasaporte,X1,A-2,1,1,,2026-12-01,,")
        record = self.importer("orders", content)
        record.action_check()
        reasons = [reason for _line, _column, reason in self.errors(record)]
        self.assertIn("no customer has the document National ID (DNI) 99999999", reasons[0])
        self.assertIn("no customer has the document Passport X1", reasons[1])
        self.assertNotRegex(" ".join(reasons), r"\b(dni|passport)\b")

    # ------------------------------------------------------------------ emails

    def test_email_is_one_exact_address(self):
        content = (
            "Tipo de documento,Número de documento,Celular_1,Correo1\n"
            "DNI,1001,1,correo con espacio@example.com\n"
            "DNI,1002,1,Lucía <lucia@example.com>\n"
            "DNI,1003,1,a@example.com; b@example.com\n"
            "DNI,1004,1, Lucia.F@Example.COM \n"
        )
        record = self.importer("customers", content, mode="skip")
        record.action_import()
        self.assertEqual(
            [(line, column) for line, column, _reason in self.errors(record)],
            [(2, "Correo1"), (3, "Correo1"), (4, "Correo1")],
        )
        self.assertIn("correo con espacio@example.com is not a valid email address", self.errors(record)[0][2])
        partners = self.env["res.partner"].search([("document_number", "in", ["1001", "1002", "1003", "1004"])])
        self.assertEqual(partners.mapped("collection_email"), ["lucia.f@example.com"])

    def test_collection_email_on_the_customer_form(self):
        partners = self.env["res.partner"]
        for bad in ("correo con espacio@example.com", "Name <name@example.com>", "a@example.com, b@example.com"):
            with self.subTest(email=bad), self.assertRaisesRegex(ValidationError, "is not a valid email address"):
                partners.create({"name": "Bad", "collection_email": bad})
            with self.subTest(email=bad), self.assertRaisesRegex(ValidationError, "is not a valid email address"):
                self.customer.collection_email = bad
        self.assertEqual(self.customer.collection_email, "cobranzas@andina.example.com")
        partner = partners.create({"name": "Good", "collection_email": "  Billing@Example.COM "})
        self.assertEqual(partner.collection_email, "billing@example.com")
        partner.write({"collection_email": " "})
        self.assertFalse(partner.collection_email)

    # ------------------------------------------------------------------ rights

    def test_manager_without_contact_rights_imports_customers(self):
        boss = new_test_user(
            self.env,
            "collections_boss",
            groups="payment_dunning.group_payment_dunning_manager",
            company_id=self.company.id,
            company_ids=[Command.set(self.company.ids)],
        )
        self.assertFalse(boss.has_group("base.group_partner_manager"))
        self.assertFalse(boss._is_admin())
        env = self.env(user=boss)
        with self.assertRaises(AccessError):
            env["res.partner"].create({"name": "Not through Contacts"})
        report = env["payment.dunning.import"].import_rows(
            "customers",
            [
                {"Tipo de documento": "DNI", "Número de documento": "5001", "Nombres": "Ana",
                 "Celular_1": "1", "Correo1": "ana@example.com"},
                {"Tipo de documento": "RUC", "Número de documento": "20100000001", "Nombres": "Andina Telecom SAA"},
            ],
        )  # fmt: skip
        self.assertEqual((report["created"], report["updated"], report["errors"]), (1, 1, []))
        content = "Tipo de documento,Número de documento,Nombres,Celular_1\nDNI,5002,Beto,995955956\n"
        record = env["payment.dunning.import"].create(
            {"kind": "customers", "file": base64.b64encode(content.encode()), "filename": "c.csv"}
        )
        record.action_import()
        self.assertEqual((record.state, record.rows_create), ("done", 1))
        ana, beto = (self.env["res.partner"].search([("document_number", "=", number)]) for number in ("5001", "5002"))
        self.assertEqual((ana.name, ana.collection_email, ana.company_id), ("Ana", "ana@example.com", self.company))
        self.assertEqual((beto.collection_whatsapp, beto.create_uid), ("+51995955956", boss))
        self.assertEqual(self.customer.name, "Andina Telecom SAA")
        # still no import for a collections user, and none into a company of someone else
        with self.assertRaises(AccessError):
            self.env(user=self.user)["payment.dunning.import"].import_rows("customers", [])
        foreign = env["payment.dunning.import"].new({"kind": "customers", "company_id": self.company_2.id})
        with self.assertRaisesRegex(AccessError, "You cannot import into the company Collections Madrid"):
            foreign._run_rows(lambda: iter(()), dry_run=True)

    # ------------------------------------------------------------------ writing

    def test_a_row_failing_when_written_is_an_error_of_its_own(self):
        order_class = type(self.env["payment.order"])
        insert_bulk = order_class._insert_bulk

        refusal = "the database said no"

        def failing_insert(model, specs, origin):
            if any(spec["payment_code"] == "BOOM" for spec in specs):
                raise ValidationError(refusal)
            return insert_bulk(model, specs, origin)

        content = self.orders_file(
            GOOD_ROW, "RUC,20100000001,BOOM,1,100.00,,2026-12-01,,", "RUC,20100000001,OK-2,1,5,,2026-12-01,,"
        )
        with patch.object(order_class, "_insert_bulk", failing_insert):
            record = self.importer("orders", content, mode="all")
            record.action_import()
            self.assertEqual((record.state, record.rows_error), ("failed", 1))
            self.assertFalse(self.imported_orders(), "all or nothing: nothing half-written")
            record = self.importer("orders", content, mode="skip")
            record.action_import()
            self.assertEqual(self.errors(record), [(3, "Código de pago", "the database said no")])
            self.assertEqual((record.state, record.rows_create), ("done", 2))
            self.assertEqual(sorted(self.imported_orders().mapped("payment_code")), ["GOOD-1", "OK-2"])


@tagged("post_install", "-at_install")
class TestStatementCompanies(PaymentDunningCase):
    def test_statement_lists_the_orders_of_the_allowed_company_only(self):
        lima = self.create_order(100.0, due_date="2026-11-01")
        madrid = self.create_order(200.0, due_date="2026-10-01", company=self.company_2)
        self.create_order(300.0, due_date="2026-09-01").action_pay()
        partner = self.customer.sudo()
        for company, orders in ((self.company, lima), (self.company_2, madrid)):
            with self.subTest(company=company.name):
                self.assertEqual(partner.with_context(allowed_company_ids=company.ids)._statement_orders(), orders)
        both = partner.with_context(allowed_company_ids=(self.company | self.company_2).ids)._statement_orders()
        self.assertEqual(both, madrid | lima)
