from odoo import fields, models


class PaymentDunningImportError(models.Model):
    """A bad row of an import, or a row worth a look (a warning): where and why."""

    _name = "payment.dunning.import.error"
    _description = "Collections Import Error"
    _order = "import_id, line, id"

    import_id = fields.Many2one("payment.dunning.import", required=True, ondelete="cascade", index=True)
    line = fields.Integer(required=True)
    column = fields.Char()
    value = fields.Char()
    reason = fields.Char(required=True)
    severity = fields.Selection(
        [("error", "Error"), ("warning", "Warning")],
        default="error",
        required=True,
        help="An error keeps the row out of the import; a warning only points at something to look at.",
    )
