import logging

from odoo import SUPERUSER_ID, api, fields, models
from odoo.tools import SQL

from ..tools.collection import OPEN_STATES, company_today

_logger = logging.getLogger(__name__)


class PaymentTransaction(models.Model):
    """Online payments of payment orders from the customer's pay-now page (README, "Pay now")."""

    _inherit = "payment.transaction"

    payment_order_ids = fields.Many2many(
        "payment.order",
        "payment_order_transaction_rel",
        "transaction_id",
        "order_id",
        string="Payment Orders",
        readonly=True,
        copy=False,
    )
    payment_order_payment_ids = fields.One2many(
        "payment.order.payment", "transaction_id", string="Order Payments", readonly=True
    )

    @api.model
    def _compute_reference_prefix(self, provider_code, separator, **values):
        """The references of the orders paid, as an invoice's transaction is named after the invoice."""
        command_list = values.get("payment_order_ids")
        if command_list:
            order_ids = self._fields["payment_order_ids"].convert_to_cache(command_list, self)
            names = self.env["payment.order"].sudo().browse(order_ids).exists().mapped("name")
            if names:
                return separator.join(names[:3]) + (f"{separator}{len(names) - 3}+" if len(names) > 3 else "")
        return super()._compute_reference_prefix(provider_code, separator, **values)

    def _post_process(self):  # pylint: disable=missing-return
        """A confirmed payment pays its orders and sends their receipts; a pending, cancelled or failed
        one leaves them as they were."""
        super()._post_process()
        for tx in self.filtered(lambda t: t.state == "done" and t.operation != "validation" and t.payment_order_ids):
            tx._register_payment_order_payments()

    def _register_payment_order_payments(self):
        """Register what this transaction paid on its orders, oldest due first, once per transaction
        however often (and by however many workers) it is post-processed."""
        self.ensure_one()
        # The poll of the customer's browser and the post-processing job can reach here at once. Both
        # write the transaction's row: the second waits, then fails to serialize (and retries, seeing
        # the payments of the first) instead of missing them in a snapshot taken before they committed.
        self.env.cr.execute(
            SQL("UPDATE payment_transaction SET write_date = (now() AT TIME ZONE 'UTC') WHERE id = %s", self.id)
        )
        self.invalidate_recordset(["payment_order_payment_ids", "write_date"])
        if self.sudo().payment_order_payment_ids:
            return self.env["payment.order.payment"]
        payments = self._allocate_to_orders()
        # the customer just paid: their receipt goes now, as when a clerk registers a payment
        payments._send_receipts()
        return payments

    def _allocate_to_orders(self):
        """One payment per order still owing, up to what was paid; what is left over (an order paid
        meanwhile by other means) stays in Accounting as the customer's credit, and the chatter says so."""
        payments = self.env["payment.order.payment"].sudo()
        currency = self.currency_id
        remaining = self.amount
        method = self.env.ref("payment_dunning.payment_method_online", raise_if_not_found=False)
        orders = self.payment_order_ids.sudo().sorted(lambda order: (order.due_date, order.id))
        for order in orders:
            if order.state not in OPEN_STATES or currency.compare_amounts(remaining, 0) <= 0:
                continue
            amount = min(order.balance, remaining)
            if currency.compare_amounts(amount, 0) <= 0:
                continue
            date = company_today(order.company_id)
            payments |= order.with_company(order.company_id)._register_payment(
                amount, date, method=method, reference=self.reference, transaction=self
            )
            remaining = currency.round(remaining - amount)
        if currency.compare_amounts(remaining, 0) > 0:
            message = self.env._(
                "%(amount)s of the online payment %(reference)s exceeded what the orders still owed: it stays "
                "as the customer's credit in Accounting.",
                amount=currency.format(remaining),
                reference=self.reference,
            )
            self.partner_id.commercial_partner_id.message_post(body=message)
            _logger.info("online payment %s left %s unallocated to payment orders", self.reference, remaining)
        return payments

    def _log_message_on_linked_documents(self, message):  # pylint: disable=missing-return
        """The orders' chatter follows their online payment too (started, pending, confirmed, failed)."""
        super()._log_message_on_linked_documents(message)
        author = self.env.user.partner_id if self.env.uid == SUPERUSER_ID else self.partner_id
        for order in self.payment_order_ids.sudo():
            order.message_post(body=message, author_id=author.id)
