import base64
import csv
import io
import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import email_normalize

from .payment_order import OPEN_STATES

BATCH_SIZE = 1000
MAX_CONTACTS = 5

DOCUMENT_TYPE_ALIASES = {
    "dni": "dni",
    "ruc": "ruc",
    "ce": "ce",
    "carnetdeextranjeria": "ce",
    "pasaporte": "passport",
    "passport": "passport",
    "otros": "other",
    "otro": "other",
    "other": "other",
    "others": "other",
}

# column name as spec 5 writes it (normalised: lower case, no accents, letters and digits only)
# -> field of the row
COMMON_COLUMNS = {
    "tipodedocumento": "document_type",
    "tipodocumento": "document_type",
    "tipoid": "document_type",
    "documenttype": "document_type",
    "numerodedocumento": "document_number",
    "numerodocumento": "document_number",
    "numeroidfiscal": "document_number",
    "documentnumber": "document_number",
}
CUSTOMER_COLUMNS = {
    **COMMON_COLUMNS,
    "nombres": "name",
    "nombre": "name",
    "name": "name",
    "firstname": "name",
    "apellidos": "last_name",
    "apellido": "last_name",
    "lastname": "last_name",
    "codigopais": "country_code",
    "countrycode": "country_code",
    **{f"celular{n}": f"mobile_{n}" for n in range(1, MAX_CONTACTS + 1)},
    **{f"mobile{n}": f"mobile_{n}" for n in range(1, MAX_CONTACTS + 1)},
    **{f"celular{n}codigopais": f"country_code_{n}" for n in range(1, MAX_CONTACTS + 1)},
    **{f"mobile{n}countrycode": f"country_code_{n}" for n in range(1, MAX_CONTACTS + 1)},
    **{f"correo{n}": f"email_{n}" for n in range(1, MAX_CONTACTS + 1)},
    **{f"email{n}": f"email_{n}" for n in range(1, MAX_CONTACTS + 1)},
    "celular": "mobile_1",
    "mobile": "mobile_1",
    "correo": "email_1",
    "email": "email_1",
}
ORDER_COLUMNS = {
    **COMMON_COLUMNS,
    "codigodepago": "payment_code",
    "codigopago": "payment_code",
    "paymentcode": "payment_code",
    "cuota": "installment",
    "installment": "installment",
    "montoop": "amount",
    "monto": "amount",
    "amount": "amount",
    "cargoseinteresesop": "charges",
    "cargoseintereses": "charges",
    "charges": "charges",
    "chargesandinterest": "charges",
    "fechadevencimiento": "due_date",
    "fechavencimiento": "due_date",
    "duedate": "due_date",
    "saldo": "balance",
    "saldopendiente": "balance",
    "balance": "balance",
    "outstandingbalance": "balance",
    "concepto": "concept",
    "concept": "concept",
}
REQUIRED = {
    "customers": ("document_type", "document_number"),
    "orders": ("document_type", "document_number", "payment_code", "amount", "due_date"),
}
# the column a missing field is reported under
FIELD_LABELS = {
    "document_type": "Tipo de documento",
    "document_number": "Número de documento",
    "payment_code": "Código de pago",
    "amount": "Monto (OP)",
    "due_date": "Fecha de vencimiento",
    "installment": "Cuota",
    "charges": "Cargos e Intereses (OP)",
    "balance": "Saldo",
    "mobile_1": "Celular_1",
}


def normalise_header(text):
    text = unicodedata.normalize("NFKD", str(text or "")).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", text)


def cell_text(value):
    """A cell as text: blank for nothing, no trailing '.0' on whole numbers read from XLSX."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


class RowError(Exception):
    """One bad cell of one row: its column and the reason."""

    def __init__(self, column, reason):
        super().__init__(reason)
        self.column = column
        self.reason = reason


class PaymentDunningImport(models.Model):
    """An import of customers or payment orders (spec 5), and its log."""

    _name = "payment.dunning.import"
    _description = "Collections Import"
    _order = "id desc"

    name = fields.Char(compute="_compute_name", store=True)
    kind = fields.Selection([("customers", "Customers"), ("orders", "Payment orders")], required=True, default="orders")
    file = fields.Binary(attachment=True, help="CSV (UTF-8, comma or semicolon) or XLSX.")
    filename = fields.Char()
    mode = fields.Selection(
        [("all", "All or nothing"), ("skip", "Skip bad rows")],
        default="all",
        required=True,
        help="All or nothing: one bad row and nothing is written. Skip bad rows: the good ones are written.",
    )
    state = fields.Selection(
        [("draft", "Draft"), ("checked", "Checked"), ("done", "Imported"), ("failed", "Not imported")],
        default="draft",
        required=True,
        readonly=True,
    )
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    rows_total = fields.Integer(string="Rows", readonly=True)
    rows_create = fields.Integer(string="To Create", readonly=True)
    rows_update = fields.Integer(string="To Update", readonly=True)
    rows_error = fields.Integer(string="Errors", readonly=True)
    error_ids = fields.One2many("payment.dunning.import.error", "import_id", string="Error List", readonly=True)

    @api.depends("kind", "filename", "create_date")
    def _compute_name(self):
        labels = dict(self._fields["kind"]._description_selection(self.env))
        for record in self:
            record.name = f"{labels.get(record.kind, '')} - {record.filename or ''}".strip(" -")

    # ------------------------------------------------------------------ buttons

    def action_check(self):
        """Dry run: count what would be created and updated and list the errors; write nothing."""
        self.ensure_one()
        report = self._run_rows(self._file_rows, dry_run=True)
        self._store_report(report, "checked")
        return True

    def action_import(self):
        self.ensure_one()
        report = self._run_rows(self._file_rows, dry_run=False)
        self._store_report(report, "failed" if report["errors"] and self.mode == "all" else "done")
        return True

    def action_download_errors(self):
        self.ensure_one()
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([self.env._("Line"), self.env._("Column"), self.env._("Value"), self.env._("Reason")])
        for error in self.error_ids:
            writer.writerow([error.line, error.column or "", error.value or "", error.reason])
        attachment = self.env["ir.attachment"].create(
            {
                "name": f"errors-{self.id}.csv",
                "raw": buffer.getvalue().encode("utf-8-sig"),
                "res_model": self._name,
                "res_id": self.id,
                "mimetype": "text/csv",
            }
        )
        return {"type": "ir.actions.act_url", "url": f"/web/content/{attachment.id}?download=true", "target": "new"}

    def action_download_template(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_url",
            "url": f"/payment_dunning/static/import/{self.kind}_template.csv",
            "target": "new",
        }

    def _store_report(self, report, state):
        self.error_ids.unlink()
        self.write(
            {
                "state": state,
                "rows_total": report["rows"],
                "rows_create": report["created"],
                "rows_update": report["updated"],
                "rows_error": len(report["errors"]),
                "error_ids": [fields.Command.create(error) for error in report["errors"]],
            }
        )

    # ------------------------------------------------------------------ external API

    @api.model
    def import_rows(self, kind, rows, mode="all", dry_run=False):
        """Import a list of row dicts (the file's column names as keys) over JSON-RPC/XML-RPC.

        Returns ``{"rows", "created", "updated", "errors": [{"line", "column", "value", "reason"}]}``;
        line 2 is the first row, as in a file with its header on line 1.
        """
        self.check_access("create")
        if kind not in REQUIRED:
            raise UserError(self.env._("Unknown kind of import %s: use 'customers' or 'orders'.", kind))
        if mode not in ("all", "skip"):
            raise UserError(self.env._("Unknown mode %s: use 'all' or 'skip'.", mode))
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise UserError(self.env._("Send the rows as a list of objects, one per row."))
        importer = self.new({"kind": kind, "mode": mode, "company_id": self.env.company.id})
        return importer._run_rows(lambda: ((index + 2, row) for index, row in enumerate(rows)), dry_run=dry_run)

    # ------------------------------------------------------------------ reading files

    def _file_rows(self):
        """(line number, {column: text}) for each row of the file, read as a stream."""
        if not self.file:
            raise UserError(self.env._("Choose the file to import."))
        content = base64.b64decode(self.file)
        if (self.filename or "").lower().endswith(".xlsx") or content[:2] == b"PK":
            return self._xlsx_rows(content)
        return self._csv_rows(content)

    def _csv_rows(self, content):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise UserError(self.env._("The file is not UTF-8 text: save it as CSV UTF-8.")) from error
        first_line = text.split("\n", 1)[0]
        delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        header = next(reader, None)
        if not header:
            raise UserError(self.env._("The file is empty."))
        for line, values in enumerate(reader, start=2):
            if any(value.strip() for value in values):
                yield line, dict(zip(header, values, strict=False))

    def _xlsx_rows(self, content):
        try:
            import openpyxl  # noqa: PLC0415 - only XLSX files need it
        except ImportError as error:
            raise UserError(self.env._("Reading XLSX files needs the openpyxl library.")) from error
        try:
            workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as error:
            raise UserError(self.env._("The XLSX file cannot be read: %s", error)) from error
        rows = workbook.active.iter_rows(values_only=True)
        header = next(rows, None)
        if not header:
            raise UserError(self.env._("The file is empty."))
        header = [cell_text(value) for value in header]
        for line, values in enumerate(rows, start=2):
            if any(cell_text(value) for value in values):
                yield line, dict(zip(header, values, strict=False))
        workbook.close()

    # ------------------------------------------------------------------ validating and writing

    def _run_rows(self, rows, dry_run):
        """Validate every row; unless ``dry_run`` (or a bad row in all-or-nothing mode), read the
        rows again and write the good ones in batches. ``rows`` makes a fresh iterator of
        (line, row) at each call, so a file is streamed twice and never held whole. Returns the
        report."""
        report = self._pass(rows(), write=False)
        if not dry_run and not (report["errors"] and self.mode == "all"):
            self._pass(rows(), write=True)
        return report

    def _pass(self, rows, write):
        aliases = CUSTOMER_COLUMNS if self.kind == "customers" else ORDER_COLUMNS
        write_batch = self._write_customers if self.kind == "customers" else self._write_orders
        context = self._lookup_context()
        report = {"rows": 0, "created": 0, "updated": 0, "errors": []}
        batch = []
        for line, raw in rows:
            report["rows"] += 1
            try:
                record = self._parse_row(raw, aliases)
                action = self._classify(record, context, line)
            except RowError as error:
                value = raw.get(error.column) if isinstance(raw, dict) else None
                report["errors"].append(
                    {"line": line, "column": error.column, "value": cell_text(value)[:200], "reason": error.reason}
                )
                continue
            report["created" if action == "create" else "updated"] += 1
            if write:
                batch.append((action, record))
                if len(batch) >= BATCH_SIZE:
                    write_batch(batch)
                    batch = []
        if batch:
            write_batch(batch)
        return report

    def _parse_row(self, raw, aliases):
        """The row's values under the field names, checked cell by cell."""
        record = {"_columns": {}}
        for column, value in raw.items():
            field = aliases.get(normalise_header(column))
            if field and field not in record:
                record[field] = cell_text(value) if not isinstance(value, date | datetime) else value
                record["_columns"][field] = column
        for field in REQUIRED[self.kind]:
            if not cell_text(record.get(field)):
                column = self._column(record, field)
                raise RowError(column, self.env._("%s is required.", column))
        record["document_type"] = self._parse_document_type(record)
        record["document_number"] = cell_text(record["document_number"])
        if self.kind == "customers":
            self._parse_customer(record)
        else:
            self._parse_order(record)
        return record

    def _column(self, record, field):
        return record["_columns"].get(field) or FIELD_LABELS.get(field, field)

    def _parse_document_type(self, record):
        value = normalise_header(record["document_type"])
        if value not in DOCUMENT_TYPE_ALIASES:
            raise RowError(
                self._column(record, "document_type"),
                self.env._("Unknown document type %s (use DNI, RUC, CE, Pasaporte or Otros).", record["document_type"]),
            )
        return DOCUMENT_TYPE_ALIASES[value]

    def _parse_customer(self, record):
        mobiles, emails = [], []
        for number in range(1, MAX_CONTACTS + 1):
            mobile = cell_text(record.get(f"mobile_{number}"))
            if mobile and mobile != "1":  # spec 5: "1" stands for "no mobile"
                if not mobile.isdigit():
                    raise RowError(
                        self._column(record, f"mobile_{number}"),
                        self.env._("A mobile number has digits only: no spaces, dashes or '+' (%s).", mobile),
                    )
                code = cell_text(record.get(f"country_code_{number}") or record.get("country_code")).lstrip("+")
                if code and not code.isdigit():
                    raise RowError(
                        self._column(record, f"country_code_{number}"),
                        self.env._("A country code has digits only (%s).", code),
                    )
                mobiles.append(f"+{code}{mobile}" if code else mobile)
            email = cell_text(record.get(f"email_{number}"))
            if email:
                normalised = email_normalize(email, strict=True)
                if not normalised or not normalised.isascii():
                    raise RowError(
                        self._column(record, f"email_{number}"),
                        self.env._("%s is not a valid email address (one address per cell).", email),
                    )
                emails.append(normalised)
        if mobiles:
            try:
                country = self.company_id.country_id
                mobiles[0] = self.env["res.partner"]._normalize_whatsapp(mobiles[0], country)
            except ValidationError as error:
                raise RowError(self._column(record, "mobile_1"), error.args[0]) from error
        record["mobiles"], record["emails"] = mobiles, emails
        name = " ".join(part for part in (cell_text(record.get("name")), cell_text(record.get("last_name"))) if part)
        record["full_name"] = name

    def _parse_order(self, record):
        record["payment_code"] = cell_text(record["payment_code"])
        installment = cell_text(record.get("installment")) or "1"
        if not installment.isdigit() or int(installment) < 1:
            raise RowError(
                self._column(record, "installment"),
                self.env._("The installment is a whole number from 1 (%s).", installment),
            )
        record["installment"] = int(installment)
        record["amount"] = self._parse_amount(record, "amount", required=True)
        record["charges"] = self._parse_amount(record, "charges")
        record["balance"] = self._parse_amount(record, "balance")
        record["due_date"] = self._parse_date(record, "due_date")
        record["concept"] = cell_text(record.get("concept")) or False
        if record["amount"] <= 0:
            raise RowError(self._column(record, "amount"), self.env._("The amount must be greater than zero."))

    def _parse_amount(self, record, field, required=False):
        """A decimal with a point; blank stays blank (None), it is not zero (spec 5)."""
        text = cell_text(record.get(field))
        if not text:
            if required:
                raise RowError(self._column(record, field), self.env._("The amount is required."))
            return None
        if "," in text:
            raise RowError(
                self._column(record, field),
                self.env._("Use a point for decimals and no commas: %s (e.g. 10000.12).", text),
            )
        try:
            value = Decimal(text)
        except InvalidOperation as error:
            raise RowError(self._column(record, field), self.env._("%s is not a number.", text)) from error
        if value < 0:
            raise RowError(self._column(record, field), self.env._("%s cannot be negative.", text))
        return float(value)

    def _parse_date(self, record, field):
        value = record.get(field)
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        text = cell_text(value)
        for pattern in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"):
            try:
                return datetime.strptime(text, pattern).date()
            except ValueError:
                continue
        raise RowError(
            self._column(record, field),
            self.env._("%s is not a date: write it as 2026-12-31 or 31/12/2026.", text),
        )

    # ------------------------------------------------------------------ keys

    def _lookup_context(self):
        """What the rows are matched against: the company's customers by document, and its orders by
        payment code and installment."""
        self.env.flush_all()
        company_id = self.company_id.id
        cr = self.env.cr
        cr.execute(
            "SELECT document_type, document_number, id FROM res_partner "
            "WHERE document_number IS NOT NULL AND (company_id = %s OR company_id IS NULL)",
            (company_id,),
        )
        customers = {(doc_type, number): partner_id for doc_type, number, partner_id in cr.fetchall()}
        orders = {}
        if self.kind == "orders":
            cr.execute(
                "SELECT payment_code, installment, id FROM payment_order "
                "WHERE company_id = %s AND payment_code IS NOT NULL",
                (company_id,),
            )
            orders = {(code, installment): order_id for code, installment, order_id in cr.fetchall()}
        return {"customers": customers, "orders": orders, "seen": {}}

    def _classify(self, record, context, line):
        """'create' or 'update', or a RowError (unknown customer, a key twice in the file)."""
        customer_key = (record["document_type"], record["document_number"])
        if self.kind == "customers":
            key = customer_key
        else:
            record["partner_id"] = context["customers"].get(customer_key)
            if not record["partner_id"]:
                raise RowError(
                    self._column(record, "document_number"),
                    self.env._(
                        "The customer does not exist: no customer has the document %(type)s %(number)s.",
                        type=record["document_type"],
                        number=record["document_number"],
                    ),
                )
            key = (record["payment_code"], record["installment"])
        if key in context["seen"]:
            raise RowError(
                self._column(record, "document_number" if self.kind == "customers" else "payment_code"),
                self.env._("The same key is already on line %s of the file.", context["seen"][key]),
            )
        context["seen"][key] = line
        existing = context["customers" if self.kind == "customers" else "orders"].get(key)
        record["existing_id"] = existing
        return "update" if existing else "create"

    # ------------------------------------------------------------------ writing

    def _write_customers(self, batch):
        partners = self.env["res.partner"]
        creates = []
        for action, record in batch:
            values = self._customer_values(record)
            if action == "update":
                partners.browse(record["existing_id"]).write(values)
            else:
                creates.append(
                    {
                        "document_type": record["document_type"],
                        "document_number": record["document_number"],
                        "company_id": self.company_id.id,
                        "customer_rank": 1,
                        "is_company": record["document_type"] == "ruc",
                        **values,
                    }
                )
        if creates:
            partners.create(creates)

    def _customer_values(self, record):
        values = {}
        if record["full_name"]:
            values["name"] = record["full_name"]
        mobiles, emails = record["mobiles"], record["emails"]
        if mobiles:
            values["collection_whatsapp"] = mobiles[0]
        if emails:
            values["collection_email"] = emails[0]
        extra = mobiles[1:] + emails[1:]
        if extra:
            values["collection_other_contacts"] = ", ".join(extra)
        if "name" not in values and not record.get("existing_id"):
            values["name"] = record["document_number"]
        return values

    def _write_orders(self, batch):
        orders = self.env["payment.order"]
        specs, updates = [], []
        for action, record in batch:
            if action == "update":
                updates.append(record)
                continue
            specs.append(
                {
                    "partner_id": record["partner_id"],
                    "company_id": self.company_id.id,
                    "due_date": record["due_date"],
                    "concept": record["concept"],
                    "payment_code": record["payment_code"],
                    "installment": record["installment"],
                    "charges_amount": record["charges"] or 0.0,
                    "balance": record["balance"],
                    "lines": [{"name": record["concept"] or record["payment_code"], "amount": record["amount"]}],
                }
            )
        created = orders._insert_bulk(specs, "import")
        # a new order already settled in the file is paid at once
        settled = [
            order_id
            for order_id, spec in zip(created.ids, specs, strict=True)
            if spec["balance"] is not None and self.company_id.currency_id.is_zero(spec["balance"])
        ]
        if settled:
            orders.browse(settled).action_pay()
        for record in updates:
            self._update_order(orders.browse(record["existing_id"]), record)

    def _update_order(self, order, record):
        """An existing key updates only the balance and the charges (spec 5)."""
        values = {}
        if record["charges"] is not None and order.state in OPEN_STATES:
            values["charges_amount"] = record["charges"]
        if record["balance"] is not None and order.state in OPEN_STATES:
            values["balance"] = record["balance"]
        if values:
            # balance 0 pays the order, and paying stops every message for it
            order.write(values)
