import socket
import time

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, tagged

from ..tools import http_deadline
from .common import LocalGatewayMixin, PaymentDunningCase
from .fake_gateway import FakeGateway

ALLOWLIST = "payment_dunning.outbound_allowlist"
# literal addresses that are not on the public internet: refused before any connection
NOT_PUBLIC = (
    "169.254.169.254",  # link-local: the cloud metadata service
    "10.0.0.1",  # private
    "[::1]",  # loopback
    "0.0.0.0",  # unspecified
    "100.64.0.1",  # shared address space (CGNAT)
    "[::ffff:127.0.0.1]",  # IPv4-mapped loopback
    "[::ffff:10.0.0.1]",  # IPv4-mapped private
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "[fe80::1]",  # IPv6 link-local
    "[fd00::1]",  # IPv6 unique local
    "[2002:a00:1::1]",  # 6to4 of 10.0.0.1
)


@tagged("post_install", "-at_install")
class TestOutbound(LocalGatewayMixin, PaymentDunningCase):
    """Requests to the WhatsApp gateways go to the public internet, or where an administrator allowed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_gateway()
        cls.params = cls.env["ir.config_parameter"].sudo()

    def setUp(self):
        super().setUp()
        self.gateway.requests.clear()
        self.gateway.script.clear()

    def allow(self, text):
        self.params.set_param(ALLOWLIST, text)

    def connector(self, url=None, **values):
        return self.env["qrapi.connector"].create(
            {"name": "Gateway", "url": url or self.gateway.url, "api_key": "sk-outbound", "timeout": 2, **values}
        )

    def force_url(self, connector, url):
        """The URL as if it had been saved under another allowlist (the save-time check skipped)."""
        self.env.cr.execute("UPDATE qrapi_connector SET url = %s WHERE id = %s", (url, connector.id))
        connector.invalidate_recordset(["url"])

    def send_test_message(self, connector):
        """Test connection of a gateway without status endpoint: the real message of its wizard."""
        action = connector.action_test_connection()
        wizard = self.env["qrapi.connector.test"].browse(action["res_id"])
        wizard.number = "+51995955955"
        wizard.action_send()

    def assert_refused_before_connecting(self, connector, pattern, gateways=()):
        connections = [gateway.connections for gateway in (self.gateway, *gateways)]
        started = time.monotonic()
        for action in (lambda: connector.send_text("+51995955955", "Hola"), lambda: self.send_test_message(connector)):
            with self.assertRaisesRegex(UserError, pattern) as caught:
                action()
            self.assertEqual(caught.exception.failure_type, "destination_refused")
            self.assertFalse(caught.exception.retriable, "a refused destination is final")
            self.assertIsInstance(caught.exception.__cause__, http_deadline.OutboundRefused)
        self.assertLess(time.monotonic() - started, 1, "no connection was even tried")
        self.assertEqual([gateway.connections for gateway in (self.gateway, *gateways)], connections)

    # ------------------------------------------------------------------ when the URL is saved

    def test_literal_addresses_that_are_not_public_are_refused_when_saved(self):
        self.allow("")
        for host in NOT_PUBLIC:
            with self.subTest(host=host), self.assertRaisesRegex(ValidationError, "not a public address"):
                self.connector(f"https://{host}:8443")
        self.assertEqual(self.connector("https://8.8.8.8").url, "https://8.8.8.8")
        self.assertEqual(self.connector("https://[2606:4700:4700::1111]/wa").url, "https://[2606:4700:4700::1111]/wa")

    def test_url_syntax_scheme_and_userinfo(self):
        for url in (
            "ftp://cliente1.qrapi.com",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://",
            "https://cliente1.qrapi.com?x=1",
            "https://cliente1.qrapi.com/#frag",
            "https://clien te1.qrapi.com",
            "https://cliente1.qrapi.com:99999",
            "https://127.1",  # an address in disguise
            "https://2130706433",
        ):
            with self.subTest(url=url), self.assertRaisesRegex(ValidationError, "not a web address"):
                self.connector(url)
        for url in ("https://user:pass@cliente1.qrapi.com", "https://cliente1.qrapi.com@169.254.169.254"):
            with self.subTest(url=url), self.assertRaisesRegex(ValidationError, "user name or password"):
                self.connector(url)

    def test_plain_http_only_to_allowed_hosts(self):
        self.allow("127.0.0.1, gateway.lan, 192.168.1.0/24")
        for url in ("http://gateway.lan:8080", "http://192.168.1.20", self.gateway.url):
            self.assertEqual(self.connector(url).url, url)
        for url in ("http://cliente1.qrapi.com", "http://8.8.8.8", "http://localhost:8080", "http://192.168.2.1"):
            with self.subTest(url=url), self.assertRaisesRegex(ValidationError, "must use https"):
                self.connector(url)

    # ------------------------------------------------------------------ when a request goes out

    def test_addresses_that_are_not_public_are_refused_before_connecting(self):
        """A gateway saved while its network was allowed is refused once it no longer is."""
        connector = self.connector()
        self.allow("")
        self.assert_refused_before_connecting(connector, "plain http")  # http to a host no longer listed
        self.force_url(connector, self.gateway.url.replace("http://", "https://"))
        self.assert_refused_before_connecting(connector, "resolves to 127.0.0.1, which is not a public address")
        for host in NOT_PUBLIC:
            with self.subTest(host=host):
                self.force_url(connector, f"https://{host}:8443")
                self.assert_refused_before_connecting(connector, "which is not a public address")

    def test_name_resolving_to_loopback_is_refused_unless_allowed(self):
        port = self.gateway.url.rsplit(":", 1)[1]
        self.allow("")
        connector = self.connector(f"https://localhost:{port}")
        self.assert_refused_before_connecting(connector, r"localhost resolves to (127\.0\.0\.1|::1), which is not")
        # every address is checked: with 127.0.0.1 allowed, a localhost that also resolves to ::1 is refused
        self.allow("127.0.0.1")
        addresses = {info[4][0] for info in socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM)}
        if addresses - {"127.0.0.1"}:
            self.assert_refused_before_connecting(connector, "localhost resolves to ::1, which is not")
        # the name allowed: its addresses are the administrator's choice, plain http too
        self.allow("localhost")
        connector = self.connector(f"http://localhost:{port}")
        self.assertTrue(connector.send_text("+51995955955", "Hola").startswith("wamid."))
        self.assertEqual(len(self.gateway.requests), 1)

    def test_allowed_network_lets_its_hosts_through(self):
        other = FakeGateway(host="127.0.0.2")
        self.addCleanup(other.close)
        self.allow("127.0.0.1")
        with self.assertRaisesRegex(ValidationError, "must use https"):
            self.connector(other.url)
        self.allow("127.0.0.0/8")
        connector = self.connector(other.url)
        connector.send_text("+51995955955", "Hola")
        self.assertEqual(len(other.requests), 1)
        self.allow("127.0.0.1")  # its network narrowed again by the administrator
        self.assert_refused_before_connecting(connector, "plain http", gateways=[other])
        self.force_url(connector, other.url.replace("http://", "https://"))
        self.assert_refused_before_connecting(connector, "127.0.0.2, which is not a public address", gateways=[other])
        self.assertEqual(len(other.requests), 1)

    def test_request_level_policy(self):
        """``http_deadline.request`` refuses by itself, whoever calls it (no allowlist: public addresses only)."""
        for url, reason in (
            ("ftp://example.com/", "scheme"),
            ("https://user:secret@example.com/", "userinfo"),
            (self.gateway.url + "/", "plain_http"),
            ("https://localhost/", "address"),
            ("https://169.254.169.254/", "address"),
            ("https://[::ffff:169.254.169.254]/", "address"),
        ):
            with self.subTest(url=url), self.assertRaises(http_deadline.OutboundRefused) as caught:
                http_deadline.request("GET", url, timeout=1)
            self.assertEqual(caught.exception.reason, reason)
        status, _body = http_deadline.request(
            "GET", self.gateway.url + "/", timeout=2, allowlist=http_deadline.Allowlist.parse("127.0.0.1")
        )
        self.assertEqual(status, 200)
        self.assertEqual(len(self.gateway.requests), 1)

    # ------------------------------------------------------------------ the allowlist

    def test_allowlist_is_validated(self):
        settings = self.env["res.config.settings"]
        for entry, pattern in (
            ("10.0.0.1/8", "write the network as 10.0.0.0/8"),
            ("0.0.0.0/0", "too wide"),
            ("::/0", "too wide"),
            ("http://gateway.lan", "not a host name"),
            ("gateway.lan:8080", "not a host name"),
            ("*.lan", "not a host name"),
            ("300.1.1.1", "not a host name"),
        ):
            with self.subTest(entry=entry), self.assertRaisesRegex(ValidationError, pattern):
                settings.create({"dunning_outbound_allowlist": f"192.168.1.20, {entry}"})
        settings.create({"dunning_outbound_allowlist": "192.168.1.20, gateway.lan\n10.0.0.0/8; fd00::/8"}).execute()
        self.assertEqual(self.params.get_param(ALLOWLIST), "192.168.1.20, gateway.lan\n10.0.0.0/8; fd00::/8")
        self.assertEqual(
            str(self.env["qrapi.connector"]._outbound_allowlist()), "gateway.lan, 192.168.1.20/32, 10.0.0.0/8, fd00::/8"
        )

    def test_invalid_entries_set_by_hand_allow_nothing(self):
        self.allow("127.0.0.1/8, localhost:80, 127.0.0.1")
        allowlist = self.env["qrapi.connector"]._outbound_allowlist()
        self.assertEqual(str(allowlist), "127.0.0.1/32")

    def test_only_administrators_set_the_allowlist(self):
        self.allow("127.0.0.1")
        with self.assertRaises(AccessError):
            self.env["res.config.settings"].with_user(self.manager).create({"dunning_outbound_allowlist": "10.0.0.0/8"})
        with self.assertRaises(AccessError):
            self.env["ir.config_parameter"].with_user(self.manager).set_param(ALLOWLIST, "10.0.0.0/8")
        self.assertNotIn("dunning_outbound_allowlist", self.env["payment.dunning.settings"]._fields)
        manager_fields = self.env["res.config.settings"].with_user(self.manager).fields_get()
        self.assertNotIn("dunning_outbound_allowlist", manager_fields)
        self.assertEqual(self.params.get_param(ALLOWLIST), "127.0.0.1")
        # nor does a manager reach a private network through a gateway of their own
        self.allow("")
        with self.assertRaisesRegex(ValidationError, "not a public address"):
            self.env["qrapi.connector"].with_user(self.manager).create(
                {"name": "Mine", "url": "https://169.254.169.254"}
            )


@tagged("post_install", "-at_install")
class TestManagerSettings(PaymentDunningCase):
    """Collections Managers who are not administrators change the module's settings in its own screen."""

    def crons(self):
        return self.env.ref("payment_dunning.cron_payment_order_mark_overdue") | self.env.ref(
            "payment_dunning.cron_payment_order_send_queue"
        )

    def test_manager_saves_the_settings(self):
        self.assertFalse(self.manager.has_group("base.group_system"))
        connector = self.env["qrapi.connector"].create({"name": "Main", "url": "https://cliente1.qrapi.com"})
        with Form(self.env["payment.dunning.settings"].with_user(self.manager)) as form:
            self.assertEqual(
                (form.dunning_days_before_due, form.dunning_generation_hour, form.dunning_batch_size),
                (3, 9.0, 200),
                "the defaults of Settings",
            )
            self.assertFalse(form.dunning_automatic_tasks)
            form.dunning_automatic_tasks = True
            form.dunning_notifications = True
            form.dunning_invoice_orders = True
            form.dunning_days_before_due = 0
            form.dunning_generation_hour = 0.0
            form.dunning_batch_size = 50
            form.dunning_connector_id = connector
            form.dunning_template_body = "Estimado @variable_nombre, su saldo es @variable_saldo"
        wizard = form.record
        wizard.action_save()
        params = self.env["ir.config_parameter"].sudo()
        self.assertEqual(
            [
                params.get_param(key)
                for key in (
                    "payment_dunning.automatic_tasks",
                    "payment_dunning.notifications_enabled",
                    "payment_dunning.invoice_orders",
                    "payment_dunning.days_before_due",
                    "payment_dunning.generation_hour",
                    "payment_dunning.batch_size",
                    "payment_dunning.connector_id",
                )
            ],
            ["True", "True", "True", "0", "0.0", "50", str(connector.id)],
            "0 days and 00:00 are settings, not the defaults",
        )
        self.assertEqual(set(self.crons().mapped("active")), {True})
        self.assertTrue(self.env.ref("payment_dunning.cron_payment_order_from_invoices").active)
        default = self.env.ref("payment_dunning.dunning_template_default")
        self.assertEqual(default.body, "Estimado @variable_nombre, su saldo es @variable_saldo")
        # what one screen saved, the other shows
        settings = Form(self.env["res.config.settings"])
        self.assertEqual((settings.dunning_days_before_due, settings.dunning_generation_hour), (0, 0.0))
        self.assertEqual(settings.dunning_connector_id, connector)
        settings.dunning_automatic_tasks = False
        settings.save().execute()
        self.assertEqual(set(self.crons().mapped("active")), {False})
        form = Form(self.env["payment.dunning.settings"].with_user(self.manager))
        self.assertFalse(form.dunning_automatic_tasks)
        self.assertEqual(form.dunning_batch_size, 50)

    def test_manager_settings_are_checked(self):
        wizard = self.env["payment.dunning.settings"].with_user(self.manager)
        with self.assertRaisesRegex(ValidationError, "generation hour"):
            wizard.create({"dunning_generation_hour": 24.0})
        with self.assertRaisesRegex(ValidationError, "cannot be negative"):
            wizard.create({"dunning_days_before_due": -1})
        with self.assertRaisesRegex(ValidationError, "@variable_sueldo"):
            wizard.create({"dunning_template_body": "Hola @variable_sueldo"})

    def test_collections_user_cannot_change_the_settings(self):
        wizard = self.env["payment.dunning.settings"]
        for user in (self.user, self.internal_user):
            with self.assertRaises(AccessError):
                Form(wizard.with_user(user))
            with self.assertRaises(AccessError):
                wizard.with_user(user).create({"dunning_automatic_tasks": True})
        saved = wizard.create({"dunning_automatic_tasks": True})
        with self.assertRaises(AccessError):
            saved.with_user(self.user).action_save()
        self.assertFalse(self.env["ir.config_parameter"].sudo().get_param("payment_dunning.automatic_tasks"))
        # Odoo's Settings stay the administrators'
        with self.assertRaises(AccessError):
            self.env["res.config.settings"].with_user(self.manager).create({"dunning_automatic_tasks": True})

    def test_manager_sees_the_settings_menu(self):
        menu = self.env.ref("payment_dunning.menu_payment_dunning_settings")
        visible = self.env["ir.ui.menu"].with_user(self.manager)._visible_menu_ids()
        self.assertIn(menu.id, visible)
        self.assertNotIn(menu.id, self.env["ir.ui.menu"].with_user(self.user)._visible_menu_ids())
