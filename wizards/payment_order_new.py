from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools.collection import company_today


class PaymentOrderNew(models.TransientModel):
    """The "+ New Order" dialog (README, "Payment orders"): customer, due date, amount and
    concept, or one of the customer's unpaid invoices; then Create, or Create and Notify."""

    _name = "payment.order.new"
    _description = "New Payment Order"

    company_id = fields.Many2one("res.company", required=True, readonly=True, default=lambda self: self.env.company)
    currency_id = fields.Many2one(related="company_id.currency_id", string="Currency")
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        # the companies are checked on create, with a message saying what is wrong (_check_customer)
        domain="[('parent_id', '=', False), '|', ('company_id', '=', False), ('company_id', '=', company_id)]",
    )
    invoice_id = fields.Many2one(
        "account.move",
        string="Invoice",
        domain="[('company_id', '=', company_id), ('commercial_partner_id', '=', partner_id), "
        "('move_type', '=', 'out_invoice'), "
        "('state', '=', 'posted'), ('payment_state', 'in', ('not_paid', 'partial')), "
        "('amount_residual', '>', 0), ('payment_order_ids', '=', False)]",
        help="Optional: an unpaid invoice of the customer. The order takes its number, residual and "
        "due date, and follows its payments.",
    )
    due_date = fields.Date(default=lambda self: company_today(self.env.company))
    amount = fields.Monetary()
    concept = fields.Char(help="What the customer is paying for; shown in the reminders.")

    @api.onchange("partner_id")
    def _onchange_partner_id(self):
        # an invoice of another customer never stays chosen
        if self.invoice_id and self.invoice_id.commercial_partner_id != self.partner_id:
            self.invoice_id = False

    @api.onchange("invoice_id")
    def _onchange_invoice_id(self):
        invoice = self.invoice_id
        if invoice:
            self.partner_id = invoice.commercial_partner_id
            self.amount = invoice.company_currency_id.round(abs(invoice.amount_residual_signed))
            self.due_date = invoice.invoice_date_due or invoice.invoice_date
            self.concept = invoice.ref or invoice.name

    # ------------------------------------------------------------------ buttons

    def action_create(self):
        """Create Order: the order is made, nobody is told; the dialog closes on a confirmation."""
        order = self._create_order()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._("Payment order %s created.", order.name),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def action_create_and_notify(self):
        """Create and Notify Order: the order is made, then the composer opens on it."""
        order = self._create_order()
        return self.env["payment.order.notify"]._composer_action(order)

    def action_open_full_form(self):
        """The full order form, for an order of several lines, with what the dialog already holds."""
        self.ensure_one()
        context = {
            "default_partner_id": self.partner_id.id,
            "default_due_date": fields.Date.to_string(self.due_date) if self.due_date else False,
            "default_concept": self.concept,
        }
        return {
            "type": "ir.actions.act_window",
            "res_model": "payment.order",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
            "context": {key: value for key, value in context.items() if value},
        }

    # ------------------------------------------------------------------ creation

    def _create_order(self):
        self.ensure_one()
        self.env["payment.order"].check_access("create")
        self._check_customer()
        if self.invoice_id:
            return self._create_invoice_order()
        self._check_amount_and_date()
        return self.env["payment.order"].create(
            {
                "partner_id": self.partner_id.id,
                "company_id": self.company_id.id,
                "due_date": self.due_date,
                "concept": self.concept or False,
                "amount": self.amount,
            }
        )

    def _check_customer(self):
        if not self.partner_id:
            raise UserError(self.env._("Choose the customer of the payment order."))
        partner = self.partner_id
        if partner.company_id and partner.company_id != self.company_id:
            raise UserError(
                self.env._(
                    "%(customer)s is a customer of %(other)s, not of %(company)s: its orders are created there.",
                    customer=partner.display_name,
                    other=partner.company_id.name,
                    company=self.company_id.name,
                )
            )

    def _check_amount_and_date(self):
        if not self.due_date:
            raise UserError(self.env._("Give the due date of the payment order."))
        if self.currency_id.compare_amounts(self.amount, 0.0) <= 0:
            raise UserError(self.env._("The amount of the payment order must be greater than zero."))

    def _create_invoice_order(self):
        """The order of an invoice is made the way the addon makes every invoice order (its number,
        residual and due date, and the link that keeps its balance in step with the invoice)."""
        invoice = self.invoice_id
        # the invoice is the user's to see: its number and amounts go into the order
        invoice.check_access("read")
        orders = self.env["payment.order"].sudo()
        candidates = invoice.sudo().filtered_domain(invoice._payment_order_candidates_domain())
        if (
            not candidates
            or invoice.company_id != self.company_id
            or invoice.commercial_partner_id != self.partner_id.commercial_partner_id
        ):
            existing = orders.search([("invoice_id", "=", invoice.id)], limit=1)
            if existing:
                raise UserError(
                    self.env._(
                        "Invoice %(invoice)s already has its payment order, %(order)s.",
                        invoice=invoice.name,
                        order=existing.name,
                    )
                )
            raise UserError(
                self.env._(
                    "Invoice %(invoice)s cannot have a payment order here: it must be a posted, unpaid "
                    "invoice of %(customer)s in %(company)s.",
                    invoice=invoice.name,
                    customer=self.partner_id.display_name,
                    company=self.company_id.name,
                )
            )
        self.env["payment.order"]._create_from_invoices(invoice)
        # an order already carrying the invoice number is linked instead of duplicated
        order = orders.search([("invoice_id", "=", invoice.id)], limit=1)
        return order.with_env(self.env)
