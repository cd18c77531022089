import json
import socket
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller

from odoo import Command
from odoo.tests import TransactionCase, new_test_user
from odoo.tests.common import _super_send

from .fake_gateway import FakeGateway


class PaymentDunningCase(TransactionCase):
    """Two companies, the collection groups and customers with collection contacts."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        allow_local_gateways(cls.env)
        # the figures a test asserts are the ones it has just made (a test of the reuse sets it again)
        cls.env["ir.config_parameter"].set_param("payment_dunning.dashboard_rules_cache_seconds", "0")
        cls.country_pe = cls.env.ref("base.pe")
        cls.company = cls.env["res.company"].create(
            {
                "name": "Cobranzas Lima",
                "country_id": cls.country_pe.id,
                "currency_id": cls.env.ref("base.PEN").id,
            }
        )
        cls.company.partner_id.tz = "America/Lima"
        cls.company_2 = cls.env["res.company"].create(
            {
                "name": "Collections Madrid",
                "country_id": cls.env.ref("base.es").id,
                "currency_id": cls.env.ref("base.EUR").id,
            }
        )
        cls.env.ref("base.PEN").active = True
        cls.env.ref("base.EUR").active = True
        companies = cls.company | cls.company_2
        cls.manager = new_test_user(
            cls.env,
            "dunning_manager",
            groups="payment_dunning.group_payment_dunning_manager",
            company_id=cls.company.id,
            company_ids=[Command.set(companies.ids)],
        )
        cls.user = new_test_user(
            cls.env,
            "dunning_user",
            groups="payment_dunning.group_payment_dunning_user",
            company_id=cls.company.id,
            company_ids=[Command.set(cls.company.ids)],
        )
        cls.user_company_2 = new_test_user(
            cls.env,
            "dunning_user_2",
            groups="payment_dunning.group_payment_dunning_user",
            company_id=cls.company_2.id,
            company_ids=[Command.set(cls.company_2.ids)],
        )
        cls.internal_user = new_test_user(
            cls.env,
            "plain_internal",
            groups="base.group_user",
            company_id=cls.company.id,
            company_ids=[Command.set(cls.company.ids)],
        )
        cls.env = cls.env(context=dict(cls.env.context, allowed_company_ids=[cls.company.id]))
        cls.customer = cls.env["res.partner"].create(
            {
                "name": "Andina Telecom",
                "is_company": True,
                "country_id": cls.country_pe.id,
                "collection_email": "cobranzas@andina.example.com",
                "collection_whatsapp": "995955955",
                "document_type": "ruc",
                "document_number": "20100000001",
            }
        )
        cls.customer_2 = cls.env["res.partner"].create(
            {"name": "Colegio San Martín", "is_company": True, "country_id": cls.country_pe.id}
        )

    @classmethod
    def create_order(cls, amount=100.0, due_date="2026-11-30", partner=None, company=None, **values):
        env = cls.env if company is None else cls.env(context=dict(cls.env.context, allowed_company_ids=[company.id]))
        vals = {"partner_id": (partner or cls.customer).id, "due_date": due_date, **values}
        if "line_ids" not in values:
            vals["amount"] = amount
        if company:
            vals["company_id"] = company.id
        return env["payment.order"].create(vals)

    @classmethod
    def orm_created_order(cls, vals):
        """An order as the ORM's ``create()`` makes it, chatter and tracking included: what every
        bulk path must store alike."""
        return cls.env["payment.order"]._internal_edit().with_context(tracking_disable=False).create(vals)

    @classmethod
    def lines(cls, *amounts):
        return [
            Command.create({"name": f"Service {index}", "amount": amount})
            for index, amount in enumerate(amounts, start=1)
        ]


def stored_values(records, skip):
    """The stored values of ``records`` (ids and ``skip`` aside): what two ways of creating them must agree on."""
    names = [
        name
        for name, field in records._fields.items()
        if field.store and field.type not in ("one2many", "many2many") and name not in skip
    ]
    return [{key: value for key, value in row.items() if key != "id"} for row in records.read(names)]


class SmtpSink:
    """A real SMTP server on 127.0.0.1 that keeps the messages it receives."""

    def __init__(self):
        self.messages = []
        self.refuse = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def start_smtp_sink(test_class):
    """Start a local SMTP server for a test class and make it the collections mail server."""
    sink = SmtpSink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    test_class.addClassCleanup(controller.stop)
    server = test_class.env["ir.mail_server"].create(
        {"name": "Local SMTP", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_encryption": "none"}
    )
    test_class.env["ir.config_parameter"].sudo().set_param("payment_dunning.mail_server_id", server.id)
    return sink, server


LOCAL_ALLOWLIST = "127.0.0.1"


def allow_local_gateways(env):
    """Let gateways on 127.0.0.1 (the FakeGateway) through the outbound policy, as an administrator would."""
    env["ir.config_parameter"].sudo().set_param("payment_dunning.outbound_allowlist", LOCAL_ALLOWLIST)


class LocalGatewayMixin:
    """Runs a FakeGateway for the test class; its requests keep their own timeout.

    Odoo's tests stretch every HTTP timeout below 10 s to 10 s, which would hide the gateway's.
    The outbound allowlist lets requests reach it.
    """

    @classmethod
    def start_gateway(cls):
        cls.gateway = FakeGateway()
        cls.addClassCleanup(cls.gateway.close)
        allow_local_gateways(cls.env)

    @classmethod
    def start_local_channels(cls, api_key="sk-local"):
        """The gateway as the company's WhatsApp connector, and a local SMTP server (``cls.sink``)."""
        cls.start_gateway()
        cls.sink, _server = start_smtp_sink(cls)
        cls.env["qrapi.connector"].create(
            {"name": "Local gateway", "url": cls.gateway.url, "api_key": api_key, "rate_limit": 0}
        )

    def whatsapp_texts(self):
        """The texts the gateway received, in order (documents left out)."""
        texts = []
        for request in self.gateway.requests:
            if request["headers"].get("Content-Type", "").startswith("application/json"):
                texts.append(json.loads(request["body"]).get("body") or "")
        return [text for text in texts if text]

    @classmethod
    def _request_handler(cls, session, request, /, **kwargs):
        if request.url.startswith(cls.gateway.url):
            return _super_send(session, request, **kwargs)
        return super()._request_handler(session, request, **kwargs)
