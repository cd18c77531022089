from odoo import api, fields, models

from .res_partner import DOCUMENT_TYPES


class PaymentDunningDocumentMap(models.Model):
    """How a company's files name a document type ("Cédula", "C.C.", "RUC10"): the mapping chosen in
    the first step of an import, remembered for the next imports of that company (spec 5)."""

    _name = "payment.dunning.document.map"
    _description = "Import Document Type Mapping"
    _order = "company_id, source"
    _rec_name = "source"

    company_id = fields.Many2one("res.company", required=True, index=True, default=lambda self: self.env.company)
    source = fields.Char(string="In the File", required=True, help="The document type as the file writes it.")
    key = fields.Char(
        required=True,
        help="The text in lower case, without accents, spaces or punctuation: 'C.C.' and 'cc' are one type.",
    )
    document_type = fields.Selection(DOCUMENT_TYPES, required=True)

    _sql_constraints = [
        ("company_key_uniq", "UNIQUE(company_id, key)", "A document type of the file is mapped once per company."),
    ]

    @api.model
    def _company_map(self, company):
        """{key: document type} remembered for ``company``."""
        return {mapping.key: mapping.document_type for mapping in self.sudo().search([("company_id", "=", company.id)])}

    @api.model
    def _remember(self, company, lines):
        """Store the mapping of the import's lines for ``company``, replacing an earlier one."""
        known = {mapping.key: mapping for mapping in self.sudo().search([("company_id", "=", company.id)])}
        new = []
        for line in lines:
            mapping = known.get(line.key)
            if mapping:
                if mapping.document_type != line.document_type:
                    mapping.document_type = line.document_type
            else:
                new.append(
                    {
                        "company_id": company.id,
                        "source": line.source,
                        "key": line.key,
                        "document_type": line.document_type,
                    }
                )
                known[line.key] = True
        self.sudo().create(new)
