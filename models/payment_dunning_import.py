import base64
import csv
import io
import itertools
import math
import re
import unicodedata
import zipfile
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL, float_compare, float_round, formatLang

from .payment_order import OPEN_STATES
from .res_partner import SYNC_KEY, SYNC_SENTINEL, normalize_single_email

BATCH_SIZE = 1000
MAX_CONTACTS = 5

# Limits of an import (documented in README.md, "Import"). A file past one of them is refused as a
# whole, with its own message, before anything is written; the cost of reading a file is bounded by
# them whatever the file declares.
MAX_FILE_BYTES = 20 * 1024 * 1024  # the uploaded file
MAX_XLSX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024  # the members of an XLSX (a zip) once uncompressed
MAX_COMPRESSION_RATIO = 100  # of a member of more than COMPRESSION_RATIO_FROM bytes (XML: 10-20 times)
COMPRESSION_RATIO_FROM = 1024 * 1024
MAX_COLUMNS = 100
MAX_ROWS = 200_000  # rows with values, besides the header; blank rows are read up to twice as many
MAX_CELL_CHARS = 1000  # a value the import reads (longer: a row error)
MAX_RECORD_CHARS = MAX_COLUMNS * (MAX_CELL_CHARS + 3)  # one CSV record, quotes and separators included
# the values an order accepts (row errors)
MAX_AMOUNT = Decimal(10) ** 12
MAX_INSTALLMENT = 9999
# distinct document types a file may name (the mapping step lists them all)
MAX_DOCUMENT_TYPES = 50

NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
DIGITS = re.compile(r"[0-9]+")

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

# column name as the import template writes it (README, "Import"), normalised: lower case, no accents,
# letters and digits only
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
    "concept": "Concepto",
    "mobile_1": "Celular_1",
    "email_1": "Correo1",
}
# document types of people, who need a mobile (spec 5; companies, RUC, need an email)
PERSON_TYPES = ("dni", "ce", "passport")
# what a failed write of one row is reported as (the batch is then written row by row)
WRITE_ERRORS = (UserError, ValidationError, psycopg2.Error)
# the report's counter of each action
COUNTERS = {"create": "created", "update": "updated", "unchanged": "unchanged"}
# a cell of the error file starting with one of these is a formula for a spreadsheet
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def normalise_header(text):
    text = unicodedata.normalize("NFKD", str(text or "")).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", text)


def cell_text(value):
    """A cell as text: blank for nothing, no trailing '.0' on whole numbers read from XLSX, and never
    an exponent (1e-05 is 0.00001); NaN and infinities read 'nan' and 'inf', which no number accepts."""
    if value is None or value is False:
        return ""
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, date):
        return (value.date() if isinstance(value, datetime) else value).isoformat()
    try:
        return str(value).strip()
    except ValueError:  # an integer of more digits than Python writes
        return ""


def float_text(value):
    if not math.isfinite(value):
        return str(value)
    if value.is_integer():
        return str(int(value))
    text = repr(value)
    return format(Decimal(text), "f") if "e" in text else text


def iso_date(text):
    """2026-12-31 as a date; None for anything else (``date.fromisoformat`` also reads 20261231)."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-" or not text.isascii():
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def storable(text):
    """``text`` as PostgreSQL can store it: no NUL character, no lone surrogate (from JSON)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def formula_safe(value):
    """A cell of a CSV meant for a spreadsheet: text that would start a formula is quoted with '."""
    text = "" if value is None or value is False else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class RowError(Exception):
    """One bad cell of one row: its column and the reason."""

    def __init__(self, column, reason):
        super().__init__(reason)
        self.column = column
        self.reason = reason


class RecordTooLong(Exception):
    """A CSV record longer than MAX_RECORD_CHARS: too many columns, or a quote left open."""


class UndoImport(Exception):
    """Rolls back an all-or-nothing import whose writing met a bad row; carries the report."""

    def __init__(self, report):
        super().__init__()
        self.report = report


class BoundedLines:
    """The lines of a text stream for ``csv.reader``, refusing a record of more than ``limit``
    characters before it is held in memory (a line of a million separators, a quote never closed).
    Each line is read with a bounded ``readline``; ``record_done()`` starts counting the next record.
    """

    def __init__(self, stream, limit):
        self.stream = stream
        self.limit = limit
        self.chars = 0

    def __iter__(self):
        return self

    def __next__(self):
        line = self.stream.readline(self.limit + 1 - self.chars)
        if not line:
            raise StopIteration
        self.chars += len(line)
        if self.chars > self.limit:
            raise RecordTooLong
        return line

    def record_done(self):
        self.chars = 0


class PaymentDunningImport(models.Model):
    """An import of customers or payment orders (README, "Import"), and its log."""

    _name = "payment.dunning.import"
    _description = "Collections Import"
    _order = "id desc"

    name = fields.Char(compute="_compute_name", store=True)
    kind = fields.Selection([("customers", "Customers"), ("orders", "Payment orders")], required=True, default="orders")
    file = fields.Binary(
        attachment=True,
        help="CSV (UTF-8, comma or semicolon) or XLSX: at most 20 MB, 100 columns and 200,000 rows.",
    )
    filename = fields.Char()
    mode = fields.Selection(
        [("all", "All or nothing"), ("skip", "Skip bad rows")],
        default="all",
        required=True,
        help="All or nothing: one bad row and nothing is written. Skip bad rows: the good ones are written.",
    )
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("mapping", "Document Types"),
            ("checked", "Checked"),
            ("done", "Imported"),
            ("failed", "Not imported"),
        ],
        default="draft",
        required=True,
        readonly=True,
    )
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    rows_total = fields.Integer(string="Rows", readonly=True)
    rows_create = fields.Integer(string="To Create", readonly=True)
    rows_update = fields.Integer(string="To Update", readonly=True)
    rows_unchanged = fields.Integer(
        string="Unchanged",
        readonly=True,
        help="Known payment orders whose balance and charges in the file are the ones they already have.",
    )
    rows_error = fields.Integer(string="Errors", readonly=True)
    rows_warning = fields.Integer(
        string="Warnings",
        readonly=True,
        help="Rows that are imported but deserve a look, e.g. a customer left without mobile and email.",
    )
    error_ids = fields.One2many("payment.dunning.import.error", "import_id", string="Error List", readonly=True)
    document_type_ids = fields.One2many(
        "payment.dunning.import.document.type",
        "import_id",
        string="Document Types",
        help="The document types found in the file and the type each is imported as; remembered for the "
        "next imports of the company.",
    )
    unmapped_document_types = fields.Char(compute="_compute_unmapped_document_types")

    @api.depends("kind", "filename", "create_date")
    def _compute_name(self):
        labels = dict(self._fields["kind"]._description_selection(self.env))
        for record in self:
            record.name = f"{labels.get(record.kind, '')} - {record.filename or ''}".strip(" -")

    @api.depends("document_type_ids.document_type")
    def _compute_unmapped_document_types(self):
        for record in self:
            unmapped = record.document_type_ids.filtered(lambda line: not line.document_type)
            record.unmapped_document_types = ", ".join(unmapped.mapped("source"))

    # ------------------------------------------------------------------ buttons

    def action_check(self):
        """Dry run: count what would be created and updated and list the errors; write nothing.
        The document types of the file are mapped first (the wizard's first step)."""
        self.ensure_one()
        if not self._map_document_types():
            return True
        report = self._run_rows(self._file_rows, dry_run=True)
        self._store_report(report, "checked")
        return True

    def action_import(self):
        self.ensure_one()
        if not self._map_document_types():
            return True
        report = self._run_rows(self._file_rows, dry_run=False)
        self._store_report(report, "failed" if report["errors"] and self.mode == "all" else "done")
        return True

    def action_download_errors(self):
        """The error list as CSV; a cell that a spreadsheet would read as a formula is quoted with '."""
        self.ensure_one()
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([self.env._("Line"), self.env._("Column"), self.env._("Value"), self.env._("Reason")])
        for error in self.error_ids:
            writer.writerow([error.line, *(formula_safe(value) for value in (error.column, error.value, error.reason))])
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
                "rows_unchanged": report["unchanged"],
                "rows_error": len(report["errors"]),
                "rows_warning": len(report["warnings"]),
                "error_ids": [fields.Command.create(error) for error in report["errors"]]
                + [fields.Command.create(dict(warning, severity="warning")) for warning in report["warnings"]],
            }
        )

    # ------------------------------------------------------------------ document types

    def _map_document_types(self):
        """The wizard's first step: list the document types of the file, each pre-filled from the
        company's remembered mapping or the names the import knows (DNI, RUC, CE, Pasaporte, Otros).
        True when every one is mapped (the mapping is then remembered for the company); else the
        import stops at this step, and a second try with types still unmapped is refused by name."""
        self._check_can_import()
        found = self._file_document_types()
        lines = {line.key: line for line in self.document_type_ids}
        (self.document_type_ids - self.document_type_ids.filtered(lambda line: line.key in found)).unlink()
        remembered = self.env["payment.dunning.document.map"]._company_map(self.company_id)
        new = [
            {
                "import_id": self.id,
                "source": source,
                "key": key,
                "document_type": remembered.get(key) or DOCUMENT_TYPE_ALIASES.get(key),
            }
            for key, source in found.items()
            if key not in lines
        ]
        self.env["payment.dunning.import.document.type"].create(new)
        if self.unmapped_document_types:
            if self.state == "mapping" and not new:
                raise UserError(self._unmapped_message())
            self.write({"state": "mapping"})
            return False
        mapped = self.document_type_ids.filtered(
            lambda line: remembered.get(line.key, DOCUMENT_TYPE_ALIASES.get(line.key)) != line.document_type
        )
        self.env["payment.dunning.document.map"]._remember(self.company_id, mapped)
        return True

    def _unmapped_message(self):
        return self.env._(
            "Choose what these document types of the file are imported as (DNI, RUC, CE, Passport or " "Other): %s.",
            self.unmapped_document_types,
        )

    def _file_document_types(self):
        """{key: the text as the file writes it} of the document types of the file: one streamed pass
        reading that column only, at most MAX_DOCUMENT_TYPES distinct ones."""
        found, columns = {}, {}
        for line, raw in self._file_rows():
            keys = tuple(raw)
            if keys not in columns:
                mapping = self._column_map(keys, line)
                columns[keys] = next((column for column, field in mapping.items() if field == "document_type"), None)
            column = columns[keys]
            text = cell_text(raw.get(column)) if column else ""
            key = normalise_header(text)
            if not key or key in found:
                continue
            if len(found) >= MAX_DOCUMENT_TYPES:
                raise UserError(
                    self.env._(
                        "The file names more than %s document types: check its document type column.",
                        MAX_DOCUMENT_TYPES,
                    )
                )
            found[key] = storable(text)[:100]
        return found

    def _document_type_map(self):
        """{key: document type}: the names the import knows, the company's remembered mapping, and
        the mapping of this import (each one over the previous)."""
        mapping = dict(DOCUMENT_TYPE_ALIASES)
        mapping.update(self.env["payment.dunning.document.map"]._company_map(self.company_id))
        mapping.update({line.key: line.document_type for line in self.document_type_ids if line.document_type})
        return mapping

    # ------------------------------------------------------------------ external API

    @api.model
    def import_rows(self, kind, rows, mode="all", dry_run=False):
        """Import a list of row dicts (the file's column names as keys) over JSON-RPC/XML-RPC.

        Returns ``{"rows", "created", "updated", "unchanged", "errors": [{"line", "column", "value",
        "reason"}]}``; line 2 is the first row, as in a file with its header on line 1. The limits
        and rules of a file apply: at most MAX_ROWS rows of MAX_COLUMNS columns.
        """
        self.check_access("create")
        if kind not in REQUIRED:
            raise UserError(self.env._("Unknown kind of import %s: use 'customers' or 'orders'.", kind))
        if mode not in ("all", "skip"):
            raise UserError(self.env._("Unknown mode %s: use 'all' or 'skip'.", mode))
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise UserError(self.env._("Send the rows as a list of objects, one per row."))
        if len(rows) > MAX_ROWS:
            raise UserError(self._too_many_rows())
        for line, row in enumerate(rows, start=2):
            if len(row) > MAX_COLUMNS:
                raise UserError(self._too_many_columns(line))
        importer = self.new({"kind": kind, "mode": mode, "company_id": self.env.company.id})
        return importer._run_rows(lambda: ((index + 2, row) for index, row in enumerate(rows)), dry_run=dry_run)

    # ------------------------------------------------------------------ limits

    def _number(self, value):
        return formatLang(self.env, value, digits=0)

    def _megabytes(self, size):
        return formatLang(self.env, size / (1024 * 1024), digits=1)

    def _too_many_rows(self):
        return self.env._(
            "The file has more than %(max)s rows: split it into files of at most %(max)s rows.",
            max=self._number(MAX_ROWS),
        )

    def _too_many_columns(self, line):
        return self.env._(
            "Line %(line)s has more than %(max)s columns: an import file has at most %(max)s columns.",
            line=line,
            max=self._number(MAX_COLUMNS),
        )

    # ------------------------------------------------------------------ reading files

    def _file_rows(self):
        """(line number, {column: value}) for each row of the file, read as a stream."""
        if not self.file:
            raise UserError(self.env._("Choose the file to import."))
        if len(self.file) * 3 // 4 > MAX_FILE_BYTES:
            raise UserError(
                self.env._(
                    "The file is %(size)s MB: the limit is %(max)s MB. Split it into smaller files.",
                    size=self._megabytes(len(self.file) * 3 // 4),
                    max=self._megabytes(MAX_FILE_BYTES),
                )
            )
        content = base64.b64decode(self.file)
        if (self.filename or "").lower().endswith(".xlsx") or content[:2] == b"PK":
            return self._xlsx_rows(content)
        return self._csv_rows(content)

    def _csv_rows(self, content):
        """The rows of a CSV file. The header's columns are counted on its first line before the
        file is parsed, and no record longer than MAX_RECORD_CHARS is ever held (``BoundedLines``):
        the process-wide ``csv.field_size_limit`` (500 MB in an Odoo server) is not what bounds it."""
        stream = io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", newline="")
        progress = {"line": 0}  # the last line read whole: an error is on the next one
        try:
            first_line = stream.readline(MAX_RECORD_CHARS + 1)
            if len(first_line) > MAX_RECORD_CHARS:
                if max(first_line.count(","), first_line.count(";")) >= MAX_COLUMNS:
                    raise UserError(self._too_many_columns(1))
                raise UserError(self._record_too_long(1))
            delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
            if first_line.count(delimiter) >= MAX_COLUMNS * 2:  # counted before csv splits the line
                raise UserError(self._too_many_columns(1))
            lines = BoundedLines(stream, MAX_RECORD_CHARS)
            lines.chars = len(first_line)
            reader = csv.reader(itertools.chain([first_line], lines), delimiter=delimiter)
            header = self._header(next(reader, None))
            progress["line"] = 1
            lines.record_done()
            yield from self._data_rows(self._csv_records(reader, lines), header, progress)
        except UnicodeDecodeError as error:
            raise UserError(self.env._("The file is not UTF-8 text: save it as CSV UTF-8.")) from error
        except RecordTooLong as error:
            raise UserError(self._record_too_long(progress["line"] + 1)) from error
        except csv.Error as error:
            raise UserError(
                self.env._("Line %(line)s cannot be read as CSV: %(error)s", line=progress["line"] + 1, error=error)
            ) from error

    def _csv_records(self, reader, lines):
        for line, values in enumerate(reader, start=2):
            lines.record_done()
            if len(values) > MAX_COLUMNS:
                while values and not values[-1].strip():
                    values.pop()
                if len(values) > MAX_COLUMNS:
                    raise UserError(self._too_many_columns(line))
            yield line, values

    def _header(self, values):
        """The column names of line 1, trailing blank ones aside, checked: not too many, no twins."""
        header = [cell_text(value) for value in values or ()]
        while header and not header[-1]:
            header.pop()
        if not header:
            raise UserError(self.env._("The file is empty."))
        if len(header) > MAX_COLUMNS:
            raise UserError(self._too_many_columns(1))
        self._column_map(header, 1)
        return header

    def _data_rows(self, records, header, progress):
        """(line, {column: value}) of the records with a value, at most MAX_ROWS of them; blank
        records are skipped, but not beyond line 2 * MAX_ROWS."""
        rows = 0
        for line, values in records:
            if any(cell_text(value) for value in values):
                rows += 1
                if rows > MAX_ROWS:
                    raise UserError(self._too_many_rows())
                yield line, dict(zip(header, values, strict=False))
            elif line > 2 * MAX_ROWS:
                raise UserError(self._too_many_rows())
            progress["line"] = line

    def _record_too_long(self, line):
        return self.env._(
            "Line %(line)s is longer than %(max)s characters: check its separators and that every "
            'quote (") is closed.',
            line=line,
            max=self._number(MAX_RECORD_CHARS),
        )

    def _check_xlsx_archive(self, content):
        """Refuse an XLSX (a zip) that would take too much to uncompress, from its directory alone:
        the sizes it declares bound what Python's zipfile gives out."""
        try:
            members = zipfile.ZipFile(io.BytesIO(content)).infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
            raise UserError(self.env._("The XLSX file cannot be read: %s", error)) from error
        total = sum(member.file_size for member in members)
        if total > MAX_XLSX_UNCOMPRESSED_BYTES:
            raise UserError(
                self.env._(
                    "The XLSX file holds %(size)s MB once uncompressed: the limit is %(max)s MB. "
                    "Split it, or save it as CSV.",
                    size=self._megabytes(total),
                    max=self._megabytes(MAX_XLSX_UNCOMPRESSED_BYTES),
                )
            )
        for member in members:
            packed = member.file_size > MAX_COMPRESSION_RATIO * max(member.compress_size, 1)
            if packed and member.file_size > COMPRESSION_RATIO_FROM:
                raise UserError(
                    self.env._(
                        "The XLSX file is refused: its part %(part)s is compressed more than %(max)s times, "
                        "as in a zip bomb. Save the sheet again from your spreadsheet, or as CSV.",
                        part=member.filename,
                        max=MAX_COMPRESSION_RATIO,
                    )
                )

    def _xlsx_rows(self, content):
        """The rows of the first sheet of an XLSX file, read as they come (openpyxl's read-only mode)
        whatever dimension the sheet declares: a stale one loses no row, an absurd one
        (``A1:XFD1048576``) costs nothing."""
        self._check_xlsx_archive(content)
        try:
            import openpyxl  # only XLSX files need it
        except ImportError as error:
            raise UserError(self.env._("Reading XLSX files needs the openpyxl library.")) from error
        try:
            workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as error:
            raise UserError(self.env._("The XLSX file cannot be read: %s", error)) from error
        try:
            sheet = workbook.active
            if sheet is None or not hasattr(sheet, "reset_dimensions"):
                raise UserError(self.env._("The file is empty."))
            sheet.reset_dimensions()
            progress = {"line": 0}
            try:
                header = self._header(next(sheet.iter_rows(min_row=1, max_row=1, values_only=True), None))
                progress["line"] = 1
                # cells right of the header are not read, as in a CSV file
                records = enumerate(sheet.iter_rows(min_row=2, max_col=len(header), values_only=True), start=2)
                yield from self._data_rows(records, header, progress)
            except UserError:
                raise
            except Exception as error:  # openpyxl reads what the sheet says: a bad cell stops it
                raise UserError(
                    self.env._(
                        "The XLSX file cannot be read at line %(line)s: %(error)s",
                        line=progress["line"] + 1,
                        error=error,
                    )
                ) from error
        finally:
            workbook.close()

    # ------------------------------------------------------------------ validating and writing

    def _check_can_import(self):
        """Imports are for Collections managers (the access rights of this model), into a company of
        theirs: customers are then written with superuser rights (a manager needs no Contacts rights),
        in that company only."""
        self.env["payment.dunning.import"].check_access("create")
        if not self.env.su and self.company_id not in self.env.user.company_ids:
            raise AccessError(self.env._("You cannot import into the company %s.", self.company_id.sudo().name))

    def _run_rows(self, rows, dry_run):
        """Validate every row; unless ``dry_run`` (or a bad row in all-or-nothing mode), read the
        rows again and write the good ones in batches. ``rows`` makes a fresh iterator of
        (line, row) at each call, so a file is streamed twice and never held whole. Returns the
        report; an all-or-nothing import that meets a bad row while writing writes nothing."""
        self._check_can_import()
        report = self._pass(rows(), write=False)
        if dry_run or (report["errors"] and self.mode == "all"):
            return report
        try:
            with self.env.cr.savepoint():
                report = self._pass(rows(), write=True)
                if report["errors"] and self.mode == "all":
                    raise UndoImport(report)
        except UndoImport as undo:
            report = undo.report
        return report

    def _pass(self, rows, write):
        report = {"rows": 0, "created": 0, "updated": 0, "unchanged": 0, "errors": [], "warnings": []}
        # the keys met so far (duplicates), the {column: field} of each set of columns, the rounding
        # of the company's currency and the document types (read once: rows are many)
        context = {
            "seen": {},
            "columns": {},
            "kind": self.kind,
            "rounding": self.company_id.currency_id.rounding,
            "document_types": self._document_type_map(),
        }
        parsed = []
        for line, raw in rows:
            report["rows"] += 1
            try:
                record = self._parse_row(raw, context, line)
            except RowError as error:
                report["errors"].append(self._error(line, raw, error))
                continue
            parsed.append((line, raw, record))
            if len(parsed) >= BATCH_SIZE:
                self._classify_batch(parsed, context, report, write)
                parsed = []
        self._classify_batch(parsed, context, report, write)
        report["errors"].sort(key=lambda error: error["line"])
        report["warnings"].sort(key=lambda warning: warning["line"])
        return report

    def _error(self, line, raw, error):
        value = raw.get(error.column) if isinstance(raw, dict) and error.column else None
        return {
            "line": line,
            "column": storable(str(error.column))[:200],
            "value": storable(cell_text(value)[:200]),
            "reason": storable(error.reason),
        }

    def _warning(self, line, record):
        return {
            "line": line,
            "column": storable(self._column(record, "document_number"))[:200],
            "value": storable(record["document_number"][:200]),
            "reason": storable(record["warning"]),
        }

    def _classify_batch(self, parsed, context, report, write):
        if not parsed:
            return
        lookup = self._lookup([record for _line, _raw, record in parsed])
        batch = []
        for line, raw, record in parsed:
            try:
                action = self._classify(record, lookup, context, line)
            except RowError as error:
                report["errors"].append(self._error(line, raw, error))
                continue
            report[COUNTERS[action]] += 1
            if record.get("warning"):
                report["warnings"].append(self._warning(line, record))
            if write and action != "unchanged":
                batch.append((line, action, record))
        if batch:
            self._write(batch, report)

    def _column_map(self, columns, line):
        """{column: field} of a header, refusing two columns that give the same field."""
        aliases = CUSTOMER_COLUMNS if self.kind == "customers" else ORDER_COLUMNS
        mapping, first = {}, {}
        for column in columns:
            field = aliases.get(normalise_header(column))
            if not field:
                continue
            if field in first:
                raise UserError(
                    self.env._(
                        'The columns "%(first)s" and "%(second)s" (line %(line)s) are the same column of '
                        "the template: keep only one of them.",
                        first=first[field],
                        second=column,
                        line=line,
                    )
                )
            first[field] = column
            mapping[column] = field
        return mapping

    def _parse_row(self, raw, context, line):
        """The row's values under the field names, checked cell by cell."""
        columns = tuple(raw)
        if columns not in context["columns"]:
            if len(context["columns"]) > 1000:
                context["columns"].clear()
            context["columns"][columns] = self._column_map(columns, line)
        record = {"_columns": {}}
        for column, field in context["columns"][columns].items():
            value = raw[column]
            text = cell_text(value)
            if len(text) > MAX_CELL_CHARS:
                raise RowError(
                    column,
                    self.env._(
                        "%(column)s has more than %(max)s characters.", column=column, max=self._number(MAX_CELL_CHARS)
                    ),
                )
            if storable(text) != text:
                raise RowError(
                    column,
                    self.env._("%s holds a character that is not text (NUL or a broken code point).", column),
                )
            record[field] = value if isinstance(value, date | datetime) else text
            record["_columns"][field] = column
        for field in REQUIRED[context["kind"]]:
            if not cell_text(record.get(field)):
                column = self._column(record, field)
                raise RowError(column, self.env._("%s is required.", column))
        record["document_type"] = self._parse_document_type(record, context["document_types"])
        record["document_number"] = cell_text(record["document_number"])
        if context["kind"] == "customers":
            self._parse_customer(record)
        else:
            self._parse_order(record, context["rounding"])
        return record

    def _column(self, record, field):
        return record["_columns"].get(field) or FIELD_LABELS.get(field, field)

    def _parse_document_type(self, record, document_types):
        value = normalise_header(record["document_type"])
        if value not in document_types:
            raise RowError(
                self._column(record, "document_type"),
                self.env._(
                    "Unknown document type %s (use DNI, RUC, CE, Pasaporte or Otros, or map it in the "
                    "import's first step).",
                    record["document_type"],
                ),
            )
        return document_types[value]

    def _document(self, record):
        """The row's document as users read it: the label of its type ("National ID (DNI)"), not its code."""
        labels = dict(self.env["res.partner"]._fields["document_type"]._description_selection(self.env))
        return {
            "type": labels.get(record["document_type"], record["document_type"]),
            "number": record["document_number"],
        }

    def _parse_customer(self, record):
        mobiles, emails = [], []
        record["mobile_given"] = False  # a mobile, or 1 for "none": what a person's row needs (spec 5)
        for number in range(1, MAX_CONTACTS + 1):
            mobile = cell_text(record.get(f"mobile_{number}"))
            record["mobile_given"] = record["mobile_given"] or bool(mobile)
            if mobile and mobile != "1":  # "1" stands for "no mobile" (README, "Import")
                if not DIGITS.fullmatch(mobile):
                    raise RowError(
                        self._column(record, f"mobile_{number}"),
                        self.env._("A mobile number has digits only: no spaces, dashes or '+' (%s).", mobile),
                    )
                code = cell_text(record.get(f"country_code_{number}") or record.get("country_code")).lstrip("+")
                if code and not DIGITS.fullmatch(code):
                    raise RowError(
                        self._column(record, f"country_code_{number}"),
                        self.env._("A country code has digits only (%s).", code),
                    )
                mobiles.append((number, f"+{code}{mobile}" if code else mobile))
            email = cell_text(record.get(f"email_{number}"))
            if email:
                normalised = normalize_single_email(email)
                if not normalised or not normalised.isascii():
                    raise RowError(
                        self._column(record, f"email_{number}"),
                        self.env._("%s is not a valid email address (one address per cell).", email),
                    )
                emails.append(normalised)
        # checked once the cells are read, as the bad emails are
        mobiles = [self._parse_mobile(record, number, mobile) for number, mobile in mobiles]
        # the same number or address twice in a row is one contact point
        record["mobiles"], record["emails"] = list(dict.fromkeys(mobiles)), list(dict.fromkeys(emails))
        name = " ".join(part for part in (cell_text(record.get("name")), cell_text(record.get("last_name"))) if part)
        record["full_name"] = name

    def _parse_mobile(self, record, number, mobile):
        """The mobile in E.164, read with the company's country when it has no country code."""
        try:
            return self.env["res.partner"]._normalize_whatsapp(mobile, self.company_id.country_id)
        except ValidationError as error:
            raise RowError(self._column(record, f"mobile_{number}"), error.args[0]) from error

    def _check_customer_contacts(self, record, existing_channels):
        """Spec 5: a person (DNI, CE, passport) needs a mobile (1 when none), a company (RUC) an email,
        unless the known customer already has one. A customer left with neither channel is a warning."""
        has_mobile, has_email = existing_channels or (False, False)
        document_type = record["document_type"]
        if document_type in PERSON_TYPES and not record["mobile_given"] and not has_mobile:
            raise RowError(
                self._column(record, "mobile_1"),
                self.env._(
                    "A person (%(type)s) needs a mobile: write it in Celular_1, or 1 when the customer has none.",
                    type=self._document(record)["type"],
                ),
            )
        if document_type == "ruc" and not record["emails"] and not has_email:
            raise RowError(
                self._column(record, "email_1"),
                self.env._(
                    "A company (%(type)s) needs an email: write it in Correo1 (a generic address if need be).",
                    type=self._document(record)["type"],
                ),
            )
        if not (record["mobiles"] or has_mobile or record["emails"] or has_email):
            record["warning"] = self.env._(
                "The customer %(type)s %(number)s has no mobile and no email: no reminder can reach it.",
                **self._document(record),
            )

    def _parse_order(self, record, rounding):
        record["payment_code"] = cell_text(record["payment_code"])
        installment = cell_text(record.get("installment")) or "1"
        if not DIGITS.fullmatch(installment) or not 1 <= int(installment) <= MAX_INSTALLMENT:
            raise RowError(
                self._column(record, "installment"),
                self.env._(
                    "%(column)s: the installment is a whole number from 1 to %(max)s (%(value)s).",
                    column=self._column(record, "installment"),
                    max=MAX_INSTALLMENT,
                    value=installment,
                ),
            )
        record["installment"] = int(installment)
        record["amount"] = self._parse_amount(record, "amount", required=True)
        record["charges"] = self._parse_amount(record, "charges")
        record["balance"] = self._parse_amount(record, "balance")
        record["due_date"] = self._parse_date(record, "due_date")
        record["concept"] = cell_text(record.get("concept")) or False
        if float_compare(record["amount"], 0.0, precision_rounding=rounding) <= 0:
            raise RowError(self._column(record, "amount"), self.env._("The amount must be greater than zero."))

    def _parse_amount(self, record, field, required=False):
        """A decimal with a point and ASCII digits, from 0 to MAX_AMOUNT; blank stays blank (None),
        it is not zero (README, "Import"). NaN, infinities, exponents and other digits are not numbers."""
        text = cell_text(record.get(field))
        column = self._column(record, field)
        if not text:
            if required:
                raise RowError(column, self.env._("The amount is required."))
            return None
        if "," in text:
            raise RowError(column, self.env._("Use a point for decimals and no commas: %s (e.g. 10000.12).", text))
        if not NUMBER.fullmatch(text):
            raise RowError(
                column,
                self.env._(
                    "%(column)s: %(value)s is not a number: write digits and a point for decimals (e.g. 10000.12).",
                    column=column,
                    value=text,
                ),
            )
        try:
            value = Decimal(text)
        except InvalidOperation as error:
            raise RowError(column, self.env._("%s is not a number.", text)) from error
        if value < 0:
            raise RowError(column, self.env._("%s cannot be negative.", text))
        if value > MAX_AMOUNT:
            raise RowError(
                column,
                self.env._(
                    "%(column)s: %(value)s is above the largest amount an order takes (%(max)s).",
                    column=column,
                    value=text,
                    max=self._number(int(MAX_AMOUNT)),
                ),
            )
        return float(value)

    def _parse_date(self, record, field):
        value = record.get(field)
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        text = cell_text(value)
        if text.isascii():
            parsed = iso_date(text)  # the common case, at a fraction of strptime's cost
            if parsed:
                return parsed
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

    def _lookup(self, records):
        """What a batch of rows is matched against: the company's customers (and those shared by all
        companies) by document, archived ones included, and for orders its orders by payment code."""
        self.env.flush_all()
        company_id = self.company_id.id
        cr = self.env.cr
        cr.execute(
            SQL(
                "SELECT document_type, document_number, id, active FROM res_partner "
                "WHERE document_number = ANY(%s) AND (company_id = %s OR company_id IS NULL) "
                "ORDER BY company_id NULLS FIRST, id",
                list({record["document_number"] for record in records}),
                company_id,
            )
        )
        # a customer of the company wins over one shared by every company
        customers = {(doc_type, number): (partner_id, active) for doc_type, number, partner_id, active in cr.fetchall()}
        orders, channels = {}, {}
        if self.kind == "customers" and customers:
            # whether a known customer already has a mobile and an email (mandatory contact, spec 5)
            cr.execute(
                SQL(
                    "SELECT id, COALESCE(collection_whatsapp, '') != '', COALESCE(collection_email, '') != '' "
                    "FROM res_partner WHERE id = ANY(%s)",
                    [partner_id for partner_id, _active in customers.values()],
                )
            )
            channels = {partner_id: (has_mobile, has_email) for partner_id, has_mobile, has_email in cr.fetchall()}
        if self.kind == "orders":
            cr.execute(
                SQL(
                    "SELECT payment_code, installment, id, name, partner_id, state, amount, charges_amount, "
                    "balance, due_date, concept FROM payment_order WHERE company_id = %s AND payment_code = ANY(%s)",
                    company_id,
                    list({record["payment_code"] for record in records}),
                )
            )
            columns = ("id", "name", "partner_id", "state", "amount", "charges", "balance", "due_date", "concept")
            orders = {(row[0], row[1]): dict(zip(columns, row[2:], strict=True)) for row in cr.fetchall()}
        return {"customers": customers, "orders": orders, "channels": channels}

    def _classify(self, record, lookup, context, line):
        """'create', 'update' or 'unchanged', or a RowError (unknown or archived customer, a key twice
        in the file, an order of another customer or with other terms, a balance above the total)."""
        customer_key = (record["document_type"], record["document_number"])
        if context["kind"] == "customers":
            key = customer_key
            existing = lookup["customers"].get(key, (None, True))[0]
        else:
            partner_id, active = lookup["customers"].get(customer_key, (None, True))
            if not partner_id:
                raise RowError(
                    self._column(record, "document_number"),
                    self.env._(
                        "The customer does not exist: no customer has the document %(type)s %(number)s.",
                        **self._document(record),
                    ),
                )
            if not active:
                raise RowError(
                    self._column(record, "document_number"),
                    self.env._(
                        "The customer with the document %(type)s %(number)s is archived: restore it before "
                        "importing its orders.",
                        **self._document(record),
                    ),
                )
            record["partner_id"] = partner_id
            key = (record["payment_code"], record["installment"])
            existing = lookup["orders"].get(key)
        if key in context["seen"]:
            raise RowError(
                self._column(record, "document_number" if context["kind"] == "customers" else "payment_code"),
                self.env._("The same key is already on line %s of the file.", context["seen"][key]),
            )
        context["seen"][key] = line
        if context["kind"] == "customers":
            record["existing_id"] = existing
            self._check_customer_contacts(record, lookup["channels"].get(existing))
            return "update" if existing else "create"
        if not existing:
            self._check_balance(record, record["charges"] or 0.0, record["balance"], context["rounding"])
            return "create"
        return self._classify_known_order(record, existing, context["rounding"])

    def _check_balance(self, record, charges, balance, rounding):
        total = float_round(record["amount"], precision_rounding=rounding) + float_round(
            charges, precision_rounding=rounding
        )
        if balance is not None and float_compare(balance, total, precision_rounding=rounding) > 0:
            currency = self.company_id.currency_id
            raise RowError(
                self._column(record, "balance"),
                self.env._(
                    "The balance %(balance)s is above the amount plus charges and interest (%(total)s).",
                    balance=formatLang(self.env, balance, currency_obj=currency),
                    total=formatLang(self.env, total, currency_obj=currency),
                ),
            )

    def _classify_known_order(self, record, order, rounding):
        """A known order takes only a new balance and new charges (README, "Import"), while open, never from
        another customer's row, and only when the file agrees on what it charges."""
        if order["partner_id"] != record["partner_id"]:
            raise RowError(
                self._column(record, "payment_code"),
                self.env._(
                    "Payment code %(code)s, installment %(installment)s is the order %(order)s of another "
                    "customer: a row never changes the order of another customer.",
                    code=record["payment_code"],
                    installment=record["installment"],
                    order=order["name"],
                ),
            )
        order_fields = self.env["payment.order"]._fields
        differences = []
        if float_compare(record["amount"], order["amount"], precision_rounding=rounding):
            differences.append(("amount", order_fields["amount"]))
        if record["due_date"] != order["due_date"]:
            differences.append(("due_date", order_fields["due_date"]))
        if "concept" in record["_columns"] and (record["concept"] or "") != (order["concept"] or ""):
            differences.append(("concept", order_fields["concept"]))
        if differences:
            raise RowError(
                self._column(record, differences[0][0]),
                self.env._(
                    "The order %(order)s already exists with another %(fields)s: cancel it and import it again, "
                    "or correct the file.",
                    order=order["name"],
                    fields=", ".join(field.get_description(self.env)["string"].lower() for _f, field in differences),
                ),
            )
        # new charges move the balance by their difference (``payment.order._set_charges``)
        charges = order["charges"] if record["charges"] is None else record["charges"]
        balance = max((order["balance"] or 0.0) + charges - order["charges"], 0.0)
        values = {}
        if float_compare(charges, order["charges"], precision_rounding=rounding):
            values["charges"] = charges
        if record["balance"] is not None and float_compare(record["balance"], balance, precision_rounding=rounding):
            values["balance"] = balance = record["balance"]
        self._check_balance(record, charges, balance, rounding)
        if not values:
            return "unchanged"
        if order["state"] not in OPEN_STATES:
            states = dict(self.env["payment.order"]._fields["state"]._description_selection(self.env))
            raise RowError(
                self._column(record, "balance" if "balance" in values else "charges"),
                self.env._(
                    "The order %(order)s is %(state)s: its balance and charges are no longer updated.",
                    order=order["name"],
                    state=states.get(order["state"], order["state"]).lower(),
                ),
            )
        record["existing_id"] = order["id"]
        record["update_values"] = values
        return "update"

    # ------------------------------------------------------------------ writing

    def _write(self, batch, report):
        """Write a batch at once; when that fails, row by row, each bad row an error of the report."""
        write_batch = self._write_customers if self.kind == "customers" else self._write_orders
        try:
            with self.env.cr.savepoint():
                write_batch([(action, record) for _line, action, record in batch])
        except WRITE_ERRORS:
            self._write_rows(write_batch, batch, report)

    def _write_rows(self, write_batch, batch, report):
        for line, action, record in batch:
            try:
                with self.env.cr.savepoint():
                    write_batch([(action, record)])
            except WRITE_ERRORS as error:
                report[COUNTERS[action]] -= 1
                reason = error.args[0] if isinstance(error, UserError) else str(error).strip().splitlines()[0]
                field = "document_number" if self.kind == "customers" else "payment_code"
                report["errors"].append(
                    {
                        "line": line,
                        "column": storable(self._column(record, field)),
                        "value": storable(cell_text(record.get(field))[:200]),
                        "reason": storable(str(reason)[:500]),
                    }
                )

    def _write_customers(self, batch):
        """Customers are written with superuser rights in the import's company (``_check_can_import``):
        a Collections manager imports them without the Contacts rights to create any contact."""
        # the defaults are written here and the contact points at once below, not partner by partner
        partners = self.env["res.partner"].sudo().with_context(**{SYNC_KEY: SYNC_SENTINEL})
        creates, created_records, contacts = [], [], {}
        for action, record in batch:
            values = self._customer_values(record)
            if action == "update":
                partners.browse(record["existing_id"]).write(values)
                contacts[record["existing_id"]] = self._contact_lists(record)
            else:
                created_records.append(record)
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
            for partner, record in zip(partners.create(creates), created_records, strict=True):
                contacts[partner.id] = self._contact_lists(record)
        self.env["res.partner.collection.contact"].sudo()._replace_contacts(
            {partner_id: lists for partner_id, lists in contacts.items() if lists}
        )

    def _contact_lists(self, record):
        """{kind: values} of the kinds the row gives: they replace the customer's contact points of that
        kind (a row without mobiles keeps the customer's mobiles, and likewise for emails)."""
        lists = {"mobile": record["mobiles"], "email": record["emails"]}
        return {kind: values for kind, values in lists.items() if values}

    def _customer_values(self, record):
        values = {}
        if record["full_name"]:
            values["name"] = record["full_name"]
        mobiles, emails = record["mobiles"], record["emails"]
        if mobiles:
            values["collection_whatsapp"] = mobiles[0]
        if emails:
            values["collection_email"] = emails[0]
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
                    # NULL, not the text "false", when the file has no concept
                    "concept": record["concept"] or None,
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
            order = orders.browse(record["existing_id"])
            if "charges" in record["update_values"]:
                order._set_charges(record["update_values"]["charges"])
            if "balance" in record["update_values"]:
                # balance 0 pays the order, and paying stops every message for it
                order._set_balance(record["update_values"]["balance"])
