import json
import re
from unittest.mock import patch

import odoo
from odoo import http
from odoo.addons.account.tests.common import AccountTestInvoicingHttpCommon
from odoo.addons.payment.controllers.post_processing import PaymentPostProcessing
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from .common import LocalGatewayMixin


class RouteError(Exception):
    """What a JSON route answered as its error message."""


LINK_RE = re.compile(r"https?://\S+/collections/pay/(\d+)\?company_id=(\d+)&access_token=([\w-]+)")


@tagged("post_install", "-at_install")
class PayNowCase(AccountTestInvoicingHttpCommon):
    """A customer with an order and an invoice order, in a company whose demo provider is enabled."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id += cls.env.ref("payment_dunning.group_payment_dunning_manager")
        cls.company = cls.env.company
        cls.company.email = "cobranzas@paynow.example.com"
        cls.provider = cls._demo_provider(cls.company)
        cls.customer = cls.env["res.partner"].create(
            {
                "name": "Cliente Pago en Línea",
                "is_company": True,
                "country_id": cls.env.ref("base.pe").id,
                "collection_email": "pagos@enlinea.example.com",
                "collection_whatsapp": "995955966",
            }
        )
        cls.other_customer = cls.env["res.partner"].create({"name": "Otro Cliente", "is_company": True})
        cls.order = cls.env["payment.order"].create(
            {"partner_id": cls.customer.id, "due_date": "2026-10-15", "amount": 120.0, "concept": "Internet octubre"}
        )
        cls.invoice = cls.init_invoice("out_invoice", cls.customer, "2026-10-01", amounts=[200.0], post=True)
        cls.invoice.action_create_payment_orders()
        cls.invoice_order = cls.invoice.payment_order_ids
        cls.foreign_order = cls.env["payment.order"].create(
            {"partner_id": cls.other_customer.id, "due_date": "2026-10-15", "amount": 999.0, "concept": "Ajeno"}
        )

    @classmethod
    def _demo_provider(cls, company):
        providers = cls.env["payment.provider"].sudo()
        providers.search([("company_id", "=", company.id)]).write({"state": "disabled"})
        demo = providers.search([("code", "=", "demo"), ("company_id", "=", company.id)], limit=1)
        demo = demo or providers.search([("code", "=", "demo")], limit=1).copy({"company_id": company.id})
        demo.write({"state": "test", "is_published": True})
        return demo

    def pay_url(self, partner=None):
        return (partner or self.customer)._collection_pay_url(self.company)

    def link_parts(self, url):
        partner_id, company_id, token = LINK_RE.search(url).groups()
        return int(partner_id), int(company_id), token

    def transaction_route(self, token, order=None, **params):
        path = f"/collections/transaction/{self.customer.id}/{self.company.id}"
        if order:
            path += f"/{order.id}"
        values = {
            "access_token": token,
            "provider_id": self.provider.id,
            "payment_method_id": self.provider.payment_method_ids[:1].id,
            "token_id": None,
            "amount": 1.0,
            "flow": "direct",
            "tokenization_requested": False,
            "landing_route": "https://evil.example.com/",
            "is_validation": False,
        }
        values.update(params)
        payload = json.dumps({"id": 0, "jsonrpc": "2.0", "method": "call", "params": values}).encode()
        with mute_logger("odoo.http"):
            answer = self.url_open(path, payload, headers={"Content-Type": "application/json"}).json()
        if "error" in answer:
            raise RouteError(answer["error"]["data"]["message"])
        return answer["result"]

    def last_transaction(self):
        return (
            self.env["payment.transaction"]
            .sudo()
            .search([("partner_id", "=", self.customer.id)], order="id desc", limit=1)
        )


class TestPayNowLink(PayNowCase):
    def test_reminders_carry_the_link_only_while_a_provider_is_enabled(self):
        template = self.env.ref("payment_dunning.dunning_template_default")
        body = template._render_body(self.order)
        self.assertRegex(body, LINK_RE)
        partner_id, company_id, token = self.link_parts(body)
        self.assertEqual((partner_id, company_id), (self.customer.id, self.company.id))
        self.assertEqual(self.link_parts(template._render_body(self.invoice_order))[2], token, "one link per customer")
        self.assertIn(token, template._render_text("Pague aquí: @variable_link_pago", self.order))
        self.provider.state = "disabled"
        self.assertNotIn("/collections/pay/", template._render_body(self.order))
        self.assertEqual(template._render_text("[@variable_link_pago]", self.order), "[]")

    def test_page_shows_the_customers_open_orders_only_with_a_valid_token(self):
        url = self.pay_url()
        _partner_id, _company_id, token = self.link_parts(url)
        page = self.url_open(url)
        self.assertEqual(page.status_code, 200)
        self.assertIn(self.order.name, page.text)
        self.assertIn(self.invoice_order.name, page.text)
        self.assertNotIn(self.foreign_order.name, page.text)
        self.assertIn("320.00", page.text, "the whole balance")
        self.assertIn("o_payment_form", page.text, "Odoo's payment form")
        # a wrong token, or this token on another customer, shows nothing
        for path in (
            f"/collections/pay/{self.customer.id}?access_token=wrong",
            f"/collections/pay/{self.customer.id}",
            f"/collections/pay/{self.other_customer.id}?access_token={token}",
        ):
            response = self.url_open(path)
            self.assertEqual(response.status_code, 404, path)
            self.assertNotIn(self.order.name, response.text)

    def test_statement_download(self):
        _partner_id, company_id, token = self.link_parts(self.pay_url())
        with patch.object(odoo.modules.module, "current_test", None):
            response = self.url_open(
                f"/collections/statement/{self.customer.id}?company_id={company_id}&access_token={token}"
            )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "application/pdf")
        self.assertEqual(self.url_open(f"/collections/statement/{self.customer.id}?access_token=x").status_code, 404)

    def test_a_link_opens_its_company_only(self):
        _partner_id, _company_id, token = self.link_parts(self.pay_url())
        other_company = self.setup_other_company()["company"]
        self.env["payment.order"].with_company(other_company).create(
            {"partner_id": self.customer.id, "due_date": "2026-10-15", "amount": 77.0, "company_id": other_company.id}
        )
        response = self.url_open(
            f"/collections/pay/{self.customer.id}?company_id={other_company.id}&access_token={token}"
        )
        self.assertEqual(response.status_code, 404)
        self.assertNotIn("77.00", response.text)

    def test_link_version_moves_only_by_revoking(self):
        with self.assertRaises(odoo.exceptions.UserError):
            self.customer.write({"collection_link_version": 0})
        self.customer.action_revoke_collection_link()
        self.assertEqual(self.customer.collection_link_version, 1)

    def test_revoked_link_stops_working(self):
        url = self.pay_url()
        self.customer.action_revoke_collection_link()
        self.assertEqual(self.url_open(url).status_code, 404)
        new_url = self.pay_url()
        self.assertNotEqual(new_url, url)
        self.assertEqual(self.url_open(new_url).status_code, 200)

    def test_a_collections_user_cannot_revoke(self):
        clerk = new_test_user(
            self.env, "clerk_paynow", groups="base.group_user,payment_dunning.group_payment_dunning_user"
        )
        with self.assertRaises(odoo.exceptions.AccessError):
            self.customer.with_user(clerk).action_revoke_collection_link()
        self.assertIn("/collections/pay/", self.customer.with_user(clerk).action_open_collection_pay_page()["url"])

    def test_each_customer_has_their_own_token(self):
        _id, _company, token = self.link_parts(self.pay_url())
        _id, _company, other_token = self.link_parts(self.pay_url(self.other_customer))
        self.assertNotEqual(token, other_token)
        self.assertEqual(
            self.url_open(f"/collections/pay/{self.customer.id}?access_token={other_token}").status_code, 404
        )
        self.assertEqual(
            self.url_open(f"/collections/pay/{self.other_customer.id}?access_token={other_token}").status_code, 200
        )


class TestPayNowTransactions(PayNowCase):
    def test_amount_and_landing_are_read_on_the_server(self):
        _partner_id, _company_id, token = self.link_parts(self.pay_url())
        self.transaction_route(token, partner_id=self.other_customer.id)
        tx = self.last_transaction()
        self.assertEqual(tx.partner_id, self.customer, "the link's customer, whatever the browser says")
        self.assertEqual(tx.amount, 320.0, "the whole balance, not what the browser sent")
        self.assertEqual(tx.payment_order_ids, self.order | self.invoice_order)
        self.assertEqual(tx.invoice_ids, self.invoice)
        self.assertNotIn("evil", tx.landing_route)
        self.transaction_route(token, order=self.order)
        tx = self.last_transaction()
        self.assertEqual((tx.amount, tx.payment_order_ids), (120.0, self.order))
        self.assertIn(self.order.name, tx.reference)

    def test_bad_requests_create_no_transaction(self):
        _partner_id, _company_id, token = self.link_parts(self.pay_url())
        other_company = self.setup_other_company()["company"]
        other_provider = self._demo_provider(other_company)
        before = self.env["payment.transaction"].sudo().search_count([])
        for bad, message in (
            ({"token": "wrong-token"}, "not valid"),
            ({"provider_id": other_provider.id}, "does not take payments"),
            ({"provider_id": self.provider.copy({"state": "disabled"}).id}, "does not take payments"),
            ({"order": self.foreign_order}, "nothing left to pay"),
            ({"currency_id": self.env.ref("base.EUR").id}, "not whitelisted"),
        ):
            params = {"token": token} | bad
            with self.assertRaisesRegex(RouteError, message, msg=str(bad)):
                self.transaction_route(params.pop("token"), **params)
        self.assertEqual(self.env["payment.transaction"].sudo().search_count([]), before)

    def test_confirmed_payment_pays_the_orders_and_queues_receipts_once(self):
        _partner_id, _company_id, token = self.link_parts(self.pay_url())
        self.transaction_route(token)
        tx = self.last_transaction()
        tx._set_done()
        tx._post_process()
        tx._register_payment_order_payments()  # a second post-processing worker
        self.env.cr.precommit.run()
        self.assertEqual(self.order.state, "paid")
        self.assertEqual(self.invoice_order.state, "paid")
        self.assertIn(self.invoice.payment_state, ("paid", "in_payment"), "reconciled by Odoo's own flow")
        payments = tx.payment_order_payment_ids
        self.assertEqual(sorted(payments.mapped("amount")), [120.0, 200.0])
        self.assertEqual(payments.method_id, self.env.ref("payment_dunning.payment_method_online"))
        self.assertEqual(set(payments.mapped("reference")), {tx.reference})
        receipts = payments.receipt_notification_ids
        self.assertEqual(len(receipts), 4, "two payments, by email and WhatsApp, once")
        self.assertNotIn("queued", receipts.mapped("state"), "sent at once, as the clerk's dialog does")
        self.assertEqual(len(self.invoice.line_ids.matched_credit_ids), 1, "one accounting payment")
        self.assertIn(tx.reference, "".join(self.order.message_ids.mapped("body")), "the chatter tells")

    def test_an_order_paid_meanwhile_leaves_the_rest_as_credit(self):
        _partner_id, _company_id, token = self.link_parts(self.pay_url())
        self.transaction_route(token)
        tx = self.last_transaction()
        self.order.action_pay()  # at the counter, while the customer paid online
        tx._set_done()
        tx._post_process()
        self.assertEqual(tx.payment_order_payment_ids.order_id, self.invoice_order)
        [note] = self.customer.message_ids.filtered(lambda message: "credit" in message.body)
        self.assertIn("120.00", note.body)

    def test_pending_or_failed_payment_changes_nothing(self):
        _partner_id, _company_id, token = self.link_parts(self.pay_url())
        for outcome in ("_set_pending", "_set_error", "_set_canceled"):
            self.transaction_route(token, order=self.order)
            tx = self.last_transaction()
            getattr(tx, outcome)(*(["declined"] if outcome == "_set_error" else []))
            tx._post_process()
            self.assertIn(self.order.state, ("pending", "overdue"), outcome)
            self.assertEqual(self.order.balance, 120.0, outcome)
            self.assertFalse(tx.payment_order_payment_ids)

    def test_page_says_how_the_payment_went(self):
        url = self.pay_url()
        _partner_id, _company_id, token = self.link_parts(url)
        self.authenticate(None, None)
        self.transaction_route(token, order=self.order)
        tx = self.last_transaction()
        self.session[PaymentPostProcessing.MONITORED_TX_ID_KEY] = tx.id
        http.root.session_store.save(self.session)
        tx._set_pending()
        self.assertIn("is being processed", self.url_open(url).text)
        tx._set_error("declined")
        self.assertIn("did not go through", self.url_open(url).text)

    def test_cancelling_an_online_invoice_payment_is_done_in_accounting(self):
        _partner_id, _company_id, token = self.link_parts(self.pay_url())
        self.transaction_route(token, order=self.invoice_order)
        tx = self.last_transaction()
        tx._set_done()
        tx._post_process()
        with self.assertRaisesRegex(odoo.exceptions.UserError, "undo it in Accounting"):
            tx.payment_order_payment_ids.action_cancel_payment("chargeback")


class TestPayNowPortal(PayNowCase):
    def test_portal_user_sees_the_same_page_under_my_account(self):
        user = new_test_user(self.env, "cliente_portal", groups="base.group_portal", partner_id=self.customer.id)
        self.assertEqual(user.partner_id, self.customer)
        self.authenticate("cliente_portal", "cliente_portal")
        page = self.url_open("/my/collections")
        self.assertEqual(page.status_code, 200)
        self.assertIn(self.order.name, page.text)
        self.assertNotIn(self.foreign_order.name, page.text)
        counters = self.make_jsonrpc_request("/my/counters", {"counters": ["collection_count"]})
        self.assertEqual(counters["collection_count"], 2)
        self.assertIn("/my/collections", self.url_open("/my/home").text)


@tagged("post_install", "-at_install")
class TestPayNowTour(LocalGatewayMixin, PayNowCase):
    """The customer opens the link of a WhatsApp reminder, pays with the demo provider, and the order turns
    paid; the receipt goes out once."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_local_channels("sk-paynow")

    def test_customer_pays_from_the_whatsapp_link(self):
        template = self.env.ref("payment_dunning.dunning_template_default")
        notifications = self.env["payment.order.notification"].sudo()
        with patch.object(odoo.modules.module, "current_test", None):
            notifications._queue(template, self.order, channels=["whatsapp"])._send_now()
        [text] = self.whatsapp_texts()
        link = LINK_RE.search(text).group(0)
        self.gateway.requests.clear()
        with patch.object(odoo.modules.module, "current_test", None):
            self.start_tour(link.replace(self.base_url(), ""), "payment_dunning_pay_now_tour")
        self.env.invalidate_all()
        self.assertEqual(self.order.state, "paid")
        self.assertEqual(self.invoice_order.state, "paid")
        payments = self.order.payment_ids | self.invoice_order.payment_ids
        self.assertEqual(len(payments), 2)
        self.assertTrue(payments.transaction_id)
        receipts = [text for text in self.whatsapp_texts() if any(p.name in text for p in payments)]
        self.assertEqual(len(receipts), 2, "one receipt per payment, sent as the customer paid")
        self.assertEqual(len(self.sink.messages), 2)
        self.assertEqual(set(payments.receipt_notification_ids.mapped("state")), {"sent"})
        with patch.object(odoo.modules.module, "current_test", None):
            self.env["payment.order.notification"].sudo()._cron_send_queue()
        self.assertEqual(len(self.sink.messages), 2, "never twice")
