from odoo import api, fields, models

from ..tools.collection import OPEN_STATES

SYNC_KEY = "payment_dunning.invoices_to_sync"
# what moves an invoice's due date, or posts it again with another one
DUE_DATE_INPUTS = {"invoice_date_due", "invoice_date", "invoice_payment_term_id", "line_ids", "state"}


class AccountMove(models.Model):
    """Customer invoices as a source of payment orders, whose balance follows the invoice's."""

    _inherit = "account.move"

    payment_order_ids = fields.One2many(
        "payment.order",
        "invoice_id",
        string="Payment Orders",
        groups="payment_dunning.group_payment_dunning_user",
    )

    def write(self, vals):
        result = super().write(vals)
        if DUE_DATE_INPUTS & set(vals):
            self._sync_payment_order_due_dates()
        return result

    def _sync_payment_order_due_dates(self):
        """The open orders of these posted invoices take the invoice's due date (README, "Invoices")."""
        invoices = self.filtered(lambda move: move.move_type == "out_invoice" and move.state == "posted")
        if not invoices:
            return
        orders = (
            self.env["payment.order"]
            .sudo()
            .search([("invoice_id", "in", invoices.ids), ("state", "in", list(OPEN_STATES))])
        )
        for order in orders:
            invoice = order.invoice_id
            due_date = invoice.invoice_date_due or invoice.invoice_date
            if due_date and due_date != order.due_date:
                order._follow_due_date(due_date)

    def _compute_payment_state(self):  # pylint: disable=missing-return
        super()._compute_payment_state()
        invoices = self.filtered(lambda move: move.id and move.move_type == "out_invoice")
        if invoices:
            self._sync_payment_orders_at_commit(invoices.ids)

    def _sync_payment_orders_at_commit(self, invoice_ids):
        """Residuals change in many steps of one payment; the orders follow once, before commit."""
        pending = self.env.cr.precommit.data.setdefault(SYNC_KEY, set())
        if not pending:
            env = self.env

            @self.env.cr.precommit.add
            def sync_payment_orders():
                ids = env.cr.precommit.data.pop(SYNC_KEY, set())
                env["account.move"].sudo().browse(ids).exists()._sync_payment_orders()

        pending.update(invoice_ids)

    def _sync_payment_orders(self):
        """Open orders of these invoices take the invoice's residual; paid invoices pay them and
        reversed or cancelled ones cancel them."""
        orders = (
            self.env["payment.order"]
            .sudo()
            .search([("invoice_id", "in", self.ids), ("state", "in", list(OPEN_STATES))])
        )
        for order in orders:
            invoice = order.invoice_id
            if invoice.state == "cancel" or invoice.payment_state == "reversed":
                order.action_cancel()
            elif invoice.payment_state in ("paid", "in_payment") or invoice.currency_id.is_zero(
                invoice.amount_residual
            ):
                order._pay()
            elif invoice.state == "posted":
                residual = order.currency_id.round(abs(invoice.amount_residual_signed))
                if order.currency_id.compare_amounts(residual, order.balance):
                    order._set_balance(min(residual, order.amount_total))
        self._reopen_unpaid_orders()

    def _reopen_unpaid_orders(self):
        """A paid order whose invoice owes again (its payment was cancelled or unreconciled) reopens with
        the invoice's residual; a written-off order stays closed: its debt was forgiven, not paid."""
        orders = (
            self.env["payment.order"]
            .sudo()
            .search([("invoice_id", "in", self.ids), ("state", "=", "paid"), ("written_off_amount", "=", 0)])
        )
        for order in orders:
            invoice = order.invoice_id
            if invoice.state != "posted" or invoice.payment_state not in ("not_paid", "partial"):
                continue
            residual = order.currency_id.round(abs(invoice.amount_residual_signed))
            if order.currency_id.compare_amounts(residual, 0) > 0:
                order._restore_balance(min(residual, order.amount_total))

    @api.model
    def _payment_order_candidates_domain(self):
        return [
            ("move_type", "=", "out_invoice"),
            ("state", "=", "posted"),
            ("payment_state", "in", ("not_paid", "partial")),
            ("amount_residual", ">", 0),
            ("payment_order_ids", "=", False),
        ]

    def action_create_payment_orders(self):
        """Create the payment order of each selected invoice that has none; open them."""
        invoices = self.filtered_domain(self._payment_order_candidates_domain())
        orders = self.env["payment.order"]._create_from_invoices(invoices)
        action = self.env["ir.actions.act_window"]._for_xml_id("payment_dunning.action_payment_order")
        action["domain"] = [("invoice_id", "in", self.ids)]
        action["context"] = {"create": False}
        if not orders and not invoices:
            action["help"] = self.env._("These invoices are paid, not posted, or have their payment order already.")
        return action
