from odoo import fields, models

from .res_partner import DOCUMENT_TYPES


class PaymentDunningImportDocumentType(models.Model):
    """A document type found in an import's file and the type it is imported as."""

    _name = "payment.dunning.import.document.type"
    _description = "Document Type of an Import"
    _order = "import_id, source"

    import_id = fields.Many2one("payment.dunning.import", required=True, ondelete="cascade", index=True)
    source = fields.Char(string="In the File", required=True, readonly=True)
    key = fields.Char(required=True, readonly=True)
    document_type = fields.Selection(DOCUMENT_TYPES, string="Imported As")
