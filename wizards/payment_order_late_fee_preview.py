from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError

MANAGER_GROUP = "payment_dunning.group_payment_dunning_manager"


class PaymentOrderLateFeePreview(models.TransientModel):
    """What the late fees and interest would add today with the terms on the Settings screen, before
    turning them on (README, "Late fees and interest"). Computed by the job's own SQL, without writing."""

    _name = "payment.order.late.fee.preview"
    _description = "Late Fees Preview"

    company_id = fields.Many2one("res.company", required=True, readonly=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    grace_days = fields.Integer(string="Grace Period (days)", readonly=True)
    fixed = fields.Monetary(string="Fixed Late Fee", readonly=True)
    monthly_rate = fields.Float(string="Monthly Interest (%)", digits=(5, 2), readonly=True)
    cap_percent = fields.Float(string="Cap (% of the amount)", digits=(5, 2), readonly=True)
    order_count = fields.Integer(string="Orders Charged Today", compute="_compute_preview")
    fee_total = fields.Monetary(string="Late Fees", compute="_compute_preview")
    interest_total = fields.Monetary(string="Interest", compute="_compute_preview")
    total = fields.Monetary(string="Added Today", compute="_compute_preview")
    detail = fields.Html(string="Orders", compute="_compute_preview", sanitize=False)

    @api.model
    def _open_for(self, company, terms):
        self._check_manager()
        preview = self.create({"company_id": company.id, **terms})
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Late fees and interest today"),
            "res_model": self._name,
            "res_id": preview.id,
            "view_mode": "form",
            "target": "new",
        }

    @api.model_create_multi
    def create(self, vals_list):
        self._check_manager()
        return super().create(vals_list)

    def _check_manager(self):
        if not self.env.user.has_group(MANAGER_GROUP):
            raise AccessError(self.env._("Only a Collections Manager can preview the late fees."))

    def _terms(self):
        return {
            "grace_days": self.grace_days,
            "fixed": self.fixed,
            "monthly_rate": self.monthly_rate,
            "cap_percent": self.cap_percent,
        }

    @api.depends("company_id", "grace_days", "fixed", "monthly_rate", "cap_percent")
    def _compute_preview(self):
        charges = self.env["payment.order.charge"].sudo()
        for preview in self:
            if not preview.company_id:
                preview.update(
                    {"order_count": 0, "fee_total": 0.0, "interest_total": 0.0, "total": 0.0, "detail": False}
                )
                continue
            result = charges._preview_late_fees(preview.company_id, preview._terms())
            preview.update(
                {
                    "order_count": result["count"],
                    "fee_total": result["fees"],
                    "interest_total": result["interest"],
                    "total": result["fees"] + result["interest"],
                    "detail": preview._detail_table(result["rows"]),
                }
            )

    def _detail_table(self, rows):
        """The orders charged the most today, with what each would get."""
        if not rows:
            return Markup("<p class='text-muted'>%s</p>") % self.env._("No order would be charged today.")
        currency = self.currency_id
        orders = self.env["payment.order"].sudo().browse([row[0] for row in rows])
        by_id = {order.id: order for order in orders}
        header = Markup(
            "<tr><th>%s</th><th>%s</th><th>%s</th><th class='text-end'>%s</th><th class='text-end'>%s</th></tr>"
        ) % (
            self.env._("Order"),
            self.env._("Customer"),
            self.env._("Due Date"),
            self.env._("Late Fee"),
            self.env._("Interest"),
        )
        lines = Markup("").join(
            Markup("<tr><td>%s</td><td>%s</td><td>%s</td><td class='text-end'>%s</td><td class='text-end'>%s</td></tr>")
            % (
                by_id[order_id].name,
                by_id[order_id].partner_id.display_name,
                fields.Date.to_string(by_id[order_id].due_date),
                currency.format(float(fee)),
                currency.format(float(interest)),
            )
            for order_id, fee, interest in rows
        )
        return Markup("<table class='table table-sm o_late_fee_preview'><thead>%s</thead><tbody>%s</tbody></table>") % (
            header,
            lines,
        )
