"""The pay-now page of the customers (README, "Pay now").

A customer opens it without an account through the signed link of their messages
(``/collections/pay/<customer>?access_token=…``), or logged in under *My Account*
(``/my/collections``). What it shows and charges is read on the server: the browser only says
which order (or the whole balance) and with which provider.
"""

from werkzeug.exceptions import NotFound

from odoo import http
from odoo.addons.payment.controllers.portal import PaymentPortal
from odoo.addons.payment.controllers.post_processing import PaymentPostProcessing
from odoo.exceptions import ValidationError
from odoo.fields import Command
from odoo.http import request


class CollectionsPortal(PaymentPortal):
    # ------------------------------------------------------------------ My Account

    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "collection_count" in counters:
            partner = request.env.user.partner_id.commercial_partner_id
            values["collection_count"] = (
                len(partner.sudo()._collection_portal_orders(request.env.company))
                if not request.env.user._is_public()
                else 0
            )
        return values

    @http.route("/my/collections", type="http", auth="user", methods=["GET"], website=True, sitemap=False)
    def portal_my_collections(self, order_id=None, **kwargs):
        partner = request.env.user.partner_id.commercial_partner_id.sudo()
        token = partner._collection_access_token(request.env.company)
        return self._render_pay_page(partner, request.env.company, token, order_id, logged_in=True)

    # ------------------------------------------------------------------ the signed link

    @http.route(
        "/collections/pay/<int:partner_id>", type="http", auth="public", methods=["GET"], website=True, sitemap=False
    )
    def collections_pay(self, partner_id, access_token=None, company_id=None, order_id=None, **kwargs):
        partner, company = self._collection_partner(partner_id, company_id, access_token)
        return self._render_pay_page(partner, company, access_token, order_id)

    @http.route(
        "/collections/statement/<int:partner_id>",
        type="http",
        auth="public",
        methods=["GET"],
        website=True,
        sitemap=False,
    )
    def collections_statement(self, partner_id, access_token=None, company_id=None, **kwargs):
        partner, company = self._collection_partner(partner_id, company_id, access_token)
        report = request.env.ref("payment_dunning.action_report_account_statement").sudo()
        pdf, _format = (
            report.with_company(company)
            .with_context(allowed_company_ids=company.ids)
            ._render_qweb_pdf(report, partner.ids)
        )
        filename = request.env._("Account statement %s.pdf", partner.name).replace("/", "_")
        headers = [
            ("Content-Type", "application/pdf"),
            ("Content-Length", len(pdf)),
            ("Content-Disposition", http.content_disposition(filename)),
        ]
        return request.make_response(pdf, headers=headers)

    @http.route(
        [
            "/collections/transaction/<int:partner_id>/<int:company_id>",
            "/collections/transaction/<int:partner_id>/<int:company_id>/<int:order_id>",
        ],
        type="json",
        auth="public",
    )
    def collections_transaction(self, partner_id, company_id, access_token, order_id=None, **kwargs):
        """Create the draft transaction of the order (or the whole balance) and return its processing
        values. The amount is the balance read now, never what the browser sent; so is where the
        customer lands afterwards."""
        partner, company = self._collection_partner(partner_id, company_id, access_token, error=ValidationError)
        orders = self._orders_to_pay(partner, company, order_id)
        if not orders:
            raise ValidationError(request.env._("There is nothing left to pay: refresh the page."))
        if len(orders.currency_id) != 1:
            raise ValidationError(request.env._("Orders in several currencies are paid one at a time."))
        self._validate_transaction_kwargs(kwargs)
        self._check_provider_company(kwargs, company)
        currency = orders.currency_id
        kwargs.update(
            amount=currency.round(sum(orders.mapped("balance"))),
            currency_id=currency.id,
            partner_id=partner.id,
            is_validation=False,
            tokenization_requested=False,
            landing_route=f"/collections/pay/{partner.id}?company_id={company.id}&access_token={access_token}",
        )
        tx_sudo = self._create_transaction(
            custom_create_values={
                "payment_order_ids": [Command.set(orders.ids)],
                "invoice_ids": [Command.set(orders.invoice_id.ids)],
            },
            **kwargs,
        )
        return tx_sudo._get_processing_values()

    @staticmethod
    def _check_provider_company(kwargs, company):
        """The orders are paid to their own company's provider, not another company's."""
        if kwargs.get("flow") == "token":
            token = request.env["payment.token"].sudo().browse(PaymentPortal._cast_as_int(kwargs.get("token_id")) or 0)
            provider = token.provider_id
        else:
            provider = (
                request.env["payment.provider"]
                .sudo()
                .browse(PaymentPortal._cast_as_int(kwargs.get("provider_id")) or 0)
            )
        if not provider.exists() or provider.company_id != company or provider.state not in ("enabled", "test"):
            raise ValidationError(request.env._("This payment method does not take payments for %s.", company.name))

    # ------------------------------------------------------------------ helpers

    @classmethod
    def _collection_partner(cls, partner_id, company_id, access_token, error=NotFound):
        """The customer and company whose token this is; nothing tells a wrong token from a wrong
        customer or company."""
        partner = request.env["res.partner"].sudo().browse(partner_id).exists()
        company = cls._collection_company(partner, company_id) if partner else None
        if (
            not partner
            or partner != partner.commercial_partner_id
            or not partner._collection_check_token(access_token, company)
        ):
            if error is NotFound:
                raise NotFound()
            raise error(request.env._("This link is not valid anymore: ask for a new one."))
        return partner, company

    @staticmethod
    def _collection_company(partner, company_id):
        """The company the customer pays: the link's, else the one with their oldest open order."""
        companies = request.env["res.company"].sudo()
        company = companies.browse(PaymentPortal._cast_as_int(company_id) or 0).exists()
        if not company:
            oldest = (
                request.env["payment.order"]
                .sudo()
                .search(
                    [
                        ("partner_id", "child_of", partner.id),
                        ("state", "in", ["pending", "overdue"]),
                        ("balance", ">", 0),
                    ],
                    order="due_date, id",
                    limit=1,
                )
            )
            company = oldest.company_id or partner.company_id or request.env.company
        return company

    @staticmethod
    def _orders_to_pay(partner, company, order_id):
        orders = partner._collection_portal_orders(company)
        order_id = PaymentPortal._cast_as_int(order_id)
        if order_id:
            orders = orders.filtered(lambda order: order.id == order_id)
        return orders

    def _render_pay_page(self, partner, company, token, order_id, logged_in=False):
        open_orders = partner._collection_portal_orders(company)
        selected = self._orders_to_pay(partner, company, order_id) or open_orders
        currency = open_orders.currency_id[:1] or company.currency_id
        amount = currency.round(sum(selected.mapped("balance")))
        query = f"company_id={company.id}&access_token={token}"
        page_url = "/my/collections" if logged_in else f"/collections/pay/{partner.id}?{query}"
        values = {
            "page_name": "collections",
            "partner": partner,
            "company": company,
            "currency": currency,
            "orders": open_orders,
            "selected_orders": selected,
            "selected_order_id": selected.id if len(selected) == 1 and len(open_orders) > 1 else False,
            "total_balance": currency.round(sum(open_orders.mapped("balance"))),
            "overdue_balance": currency.round(
                sum(open_orders.filtered(lambda o: o.state == "overdue").mapped("balance"))
            ),
            "pay_amount": amount,
            "statement_url": f"/collections/statement/{partner.id}?{query}",
            "order_url": f"{page_url}{'&' if '?' in page_url else '?'}order_id=",
            "page_url": page_url,
            "tx": self._collection_last_transaction(partner),
            "logged_in": logged_in,
        }
        if open_orders and len(open_orders.currency_id) == 1:
            values.update(self._collection_payment_form_values(partner, company, currency, amount, token, selected))
        return request.render("payment_dunning.collections_pay_page", values)

    def _collection_payment_form_values(self, partner, company, currency, amount, token, selected):
        """What Odoo's payment form needs: the company's providers for this amount, and our routes."""
        availability_report = {}
        providers_sudo = (
            request.env["payment.provider"]
            .sudo()
            ._get_compatible_providers(
                company.id, partner.id, amount, currency_id=currency.id, report=availability_report
            )
        )
        payment_methods_sudo = (
            request.env["payment.method"]
            .sudo()
            ._get_compatible_payment_methods(
                providers_sudo.ids, partner.id, currency_id=currency.id, report=availability_report
            )
        )
        order_path = f"/{selected.id}" if len(selected) == 1 else ""
        return {
            "show_payment_form": True,
            "amount": amount,
            "partner_id": partner.id,
            "providers_sudo": providers_sudo,
            "payment_methods_sudo": payment_methods_sudo,
            "tokens_sudo": request.env["payment.token"],
            "availability_report": availability_report,
            "show_tokenize_input_mapping": dict.fromkeys(providers_sudo.ids, False),
            "transaction_route": f"/collections/transaction/{partner.id}/{company.id}{order_path}",
            "landing_route": f"/collections/pay/{partner.id}?company_id={company.id}&access_token={token}",
            "access_token": token,
        }

    @staticmethod
    def _collection_last_transaction(partner):
        """The online payment this browser just made for this customer, to say how it went."""
        tx = (
            request.env["payment.transaction"]
            .sudo()
            .browse(request.session.get(PaymentPostProcessing.MONITORED_TX_ID_KEY))
            .exists()
        )
        if tx and tx.payment_order_ids and tx.partner_id.commercial_partner_id == partner:
            return tx
        return request.env["payment.transaction"]
