import json
import socket
import time

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from .common import LocalGatewayMixin, PaymentDunningCase
from .fake_gateway import FakeGateway

SECRET = "sk-live-7f3a9c"


@tagged("post_install", "-at_install")
class TestQrapiConnector(LocalGatewayMixin, PaymentDunningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_gateway()

    def setUp(self):
        super().setUp()
        self.gateway.requests.clear()
        self.gateway.script.clear()
        self.gateway.api_key = None

    def connector(self, **values):
        return (
            self.env["qrapi.connector"]
            .with_context(qrapi_backoff_factor=0.01)
            .create(
                {
                    "name": "Gateway",
                    "url": self.gateway.url + "/",
                    "api_key": SECRET,
                    "timeout": 2,
                    "rate_limit": 0,
                    **values,
                }
            )
        )

    def send_test_message(self, connector, number="+51995955955"):
        """Test connection of a gateway without status endpoint: the real message of its wizard."""
        action = connector.action_test_connection()
        self.assertEqual(action["res_model"], "qrapi.connector.test")
        wizard = self.env["qrapi.connector.test"].browse(action["res_id"])
        wizard.number = number
        wizard.action_send()
        return wizard

    def test_default_request_shape(self):
        connector = self.connector()
        self.assertEqual(connector.url, self.gateway.url, "the trailing slash is removed")
        reply = connector.send_text("+51995955955", "Hola *Andina*")
        self.assertEqual(reply, "wamid.1")
        request = self.gateway.requests[0]
        self.assertEqual((request["method"], request["path"]), ("POST", "/api/messages/send"))
        self.assertEqual(request["headers"]["Authorization"], f"Bearer {SECRET}")
        self.assertEqual(self.gateway.json(), {"number": "51995955955", "body": "Hola *Andina*"})

    def test_evolution_preset(self):
        connector = self.connector(preset="evolution", instance="cobranzas")
        connector.send_text("+51995955955", "Hola")
        request = self.gateway.requests[0]
        self.assertEqual(request["path"], "/message/sendText/cobranzas")
        self.assertEqual(request["headers"]["apikey"], SECRET)
        self.assertNotIn("Authorization", request["headers"])
        self.assertEqual(self.gateway.json(), {"number": "51995955955", "text": "Hola"})

    def test_waha_preset(self):
        connector = self.connector(preset="waha", instance="default")
        self.gateway.script.append((201, {"id": {"_serialized": "true_51995955955@c.us_ABC"}}))
        reply = connector.send_text("+51 995 955 955", "Hola")
        request = self.gateway.requests[0]
        self.assertEqual(request["path"], "/api/sendText")
        self.assertEqual(request["headers"]["X-Api-Key"], SECRET)
        self.assertEqual(self.gateway.json(), {"session": "default", "chatId": "51995955955@c.us", "text": "Hola"})
        self.assertEqual(reply, "true_51995955955@c.us_ABC")

    def test_document_is_multipart_by_default(self):
        connector = self.connector()
        connector.send_document("+51995955955", "estado.pdf", b"%PDF-1.4 fake", "Su estado de cuenta")
        request = self.gateway.requests[0]
        self.assertIn("multipart/form-data", request["headers"]["Content-Type"])
        self.assertIn(b'name="medias"; filename="estado.pdf"', request["body"])
        self.assertIn(b"%PDF-1.4 fake", request["body"])
        self.assertIn(b"Su estado de cuenta", request["body"])

    def test_one_call_is_one_attempt(self):
        """Retries belong to the send queue: the connector never sleeps and tries again by itself."""
        connector = self.connector(retries=3)
        self.gateway.script.extend([(503, {"error": "busy"}), (200, {"id": "ok-2"})])
        with self.assertRaisesRegex(UserError, "HTTP 503.*busy") as caught:
            connector.send_text("+51995955955", "Hola")
        self.assertTrue(caught.exception.retriable)
        self.assertEqual(caught.exception.failure_type, "gateway_error")
        self.assertEqual(len(self.gateway.requests), 1)

    def test_rejected_key_is_final(self):
        connector = self.connector(retries=3)
        self.gateway.script.append((401, {"error": f"invalid token {SECRET}"}))
        with self.assertRaisesRegex(UserError, "API key rejected") as caught:
            connector.send_text("+51995955955", "Hola")
        self.assertFalse(caught.exception.retriable)
        self.assertEqual(caught.exception.failure_type, "key_rejected")
        self.assertNotIn(SECRET, str(caught.exception), "the key is never repeated in an error")

    def test_not_found_points_at_the_url(self):
        connector = self.connector()
        self.gateway.script.append((404, {}))
        with self.assertRaisesRegex(UserError, "check the client URL"):
            connector.send_text("+51995955955", "Hola")

    def test_silent_gateway_ends_at_the_timeout(self):
        connector = self.connector(timeout=1)
        self.gateway.hang_seconds = 4
        self.gateway.script.append("hang")
        started = time.monotonic()
        with self.assertRaisesRegex(UserError, "did not answer within 1 seconds") as caught:
            connector.send_text("+51995955955", "Hola")
        self.assertLess(time.monotonic() - started, 3)
        self.assertTrue(caught.exception.retriable)
        self.assertEqual(caught.exception.failure_type, "gateway_unreachable")

    def test_trickling_gateway_ends_at_the_deadline(self):
        """A gateway that sends its answer a byte at a time cannot hold a send past the timeout."""
        connector = self.connector(timeout=2)
        self.gateway.trickle_seconds = 0.2  # its 100-byte answer would take 20 s
        self.gateway.script.append("trickle")
        started = time.monotonic()
        with self.assertRaisesRegex(UserError, "did not answer within 2 seconds"):
            connector.send_text("+51995955955", "Hola")
        self.assertLess(time.monotonic() - started, 4)

    def test_unreachable_gateway(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        connector = self.connector(url=f"http://127.0.0.1:{port}")
        with self.assertRaisesRegex(UserError, "cannot be reached") as caught:
            connector.send_text("+51995955955", "Hola")
        self.assertEqual(caught.exception.failure_type, "gateway_unreachable")
        self.assertTrue(caught.exception.retriable)

    def test_redirect_is_not_followed(self):
        """A redirect is an error: neither the message nor the key goes where it points, allowed or not."""
        elsewhere = FakeGateway(host="127.0.0.2")
        self.addCleanup(elsewhere.close)
        connector = self.connector()
        for allowlist in ("127.0.0.1", "127.0.0.0/8"):  # the other host refused, then allowed
            self.env["ir.config_parameter"].set_param("payment_dunning.outbound_allowlist", allowlist)
            for status in (301, 302, 307, 308):
                self.gateway.script.append((status, {}, {"Location": elsewhere.url + "/api/messages/send"}))
                with self.assertRaisesRegex(UserError, f"HTTP {status}, a redirect, which is never followed") as caught:
                    connector.send_text("+51995955955", "Hola")
                self.assertEqual(caught.exception.failure_type, "gateway_error")
                self.assertFalse(caught.exception.retriable)
        self.gateway.script.append((302, {}, {"Location": "http://169.254.169.254/latest/meta-data/"}))
        with self.assertRaisesRegex(UserError, "HTTP 302"):
            self.send_test_message(connector)
        self.assertEqual(len(self.gateway.requests), 9)
        self.assertEqual((elsewhere.connections, elsewhere.requests), (0, []), "nothing reached the other host")

    def test_connection_is_kept_alive(self):
        connector = self.connector()
        connections = self.gateway.connections
        for _attempt in range(3):
            connector.send_text("+51995955955", "Hola")
        self.assertEqual(len(self.gateway.requests), 3)
        self.assertLessEqual(self.gateway.connections - connections, 1, "one connection for three messages")

    def test_timeout_has_a_ceiling(self):
        with self.assertRaisesRegex(ValidationError, "between 1 and 120 seconds"):
            self.connector(timeout=10**9)
        with self.assertRaisesRegex(ValidationError, "between 1 and 120 seconds"):
            self.connector(timeout=0)
        self.assertEqual(self.connector(timeout=120).timeout, 120)

    def test_no_number(self):
        with self.assertRaisesRegex(UserError, "no WhatsApp number"):
            self.connector().send_text("", "Hola")

    def test_url_must_be_https_outside_this_machine(self):
        with self.assertRaisesRegex(ValidationError, "https"):
            self.connector(url="http://cliente1.qrapi.com")
        connector = self.connector(url="https://cliente1.qrapi.com/")
        self.assertEqual(connector.url, "https://cliente1.qrapi.com")
        with self.assertRaisesRegex(ValidationError, "not a web address"):
            connector.url = "cliente1 qrapi"

    def test_test_connection(self):
        """QRAPI has no status path: a real message to the user's number, which the user confirms, proves the key."""
        self.gateway.api_key = SECRET  # answers 401 to a wrong key
        self.company.phone = "+51 999 888 777"
        connector = self.connector(company_id=self.company.id)
        action = connector.action_test_connection()
        self.assertFalse(self.gateway.requests, "nothing is sent before the user confirms the number")
        wizard = self.env["qrapi.connector.test"].browse(action["res_id"])
        self.assertEqual(wizard.number, "+51 999 888 777", "the company's own number is proposed")
        wizard.action_send()
        self.assertEqual(wizard.state, "sent")
        request = self.gateway.requests[0]
        self.assertEqual((request["method"], request["path"]), ("POST", "/api/messages/send"))
        self.assertEqual(request["headers"]["Authorization"], f"Bearer {SECRET}")
        self.assertEqual(self.gateway.json()["number"], "51999888777")
        self.assertIn("Test message", self.gateway.json()["body"])
        result = wizard.action_confirm_received()
        self.assertEqual(result["params"]["type"], "success")
        self.assertIn(
            "Proof: a real message sent with the API key reached +51 999 888 777", result["params"]["message"]
        )
        self.assertEqual(wizard.action_not_received()["params"]["type"], "warning")
        wrong = self.connector(api_key="sk-wrong")
        with self.assertRaisesRegex(UserError, "API key rejected") as caught:
            self.send_test_message(wrong)
        self.assertEqual(caught.exception.failure_type, "key_rejected")
        self.gateway.api_key = None
        self.gateway.script.append((403, {}))
        with self.assertRaisesRegex(UserError, "API key rejected"):
            self.send_test_message(connector)

    def test_test_connection_405_is_no_success(self):
        """A send path that does not take POST is a wrong URL or path, not a gateway that read the key."""
        connector = self.connector()
        for status in (405, 404, 500, 302):
            self.gateway.script.append((status, {"error": "Method Not Allowed"}))
            with self.assertRaisesRegex(UserError, f"HTTP {status}|answered {status}"):
                self.send_test_message(connector)

    def test_test_connection_reads_a_status_path(self):
        """A status path of its own (Custom preset) is read with GET, and 2xx only is a success."""
        connector = self.connector(preset="custom", status_path="/api/status")
        self.assertEqual(connector.action_test_connection()["params"]["type"], "success")
        self.assertEqual((self.gateway.requests[0]["method"], self.gateway.requests[0]["path"]), ("GET", "/api/status"))
        self.gateway.script.append((405, {}))
        with self.assertRaisesRegex(UserError, "HTTP 405"):
            connector.action_test_connection()
        self.gateway.api_key = SECRET
        connector.sudo().api_key = "sk-wrong"
        with self.assertRaisesRegex(UserError, "API key rejected"):
            connector.action_test_connection()

    def test_api_key_is_for_administrators_only(self):
        connector = self.connector()
        with self.assertRaises(AccessError):
            connector.with_user(self.manager).read(["api_key"])
        with self.assertRaises(AccessError):
            connector.with_user(self.user).read(["api_key"])
        self.assertEqual(connector.with_user(self.manager).read(["url"])[0]["url"], self.gateway.url)
        with self.assertRaises(AccessError):
            connector.with_user(self.user).write({"timeout": 5})

    def test_echoed_key_is_redacted_before_the_answer_is_cut(self):
        connector = self.connector()
        # the key straddles the 120th character of the answer: no half of it may survive
        self.gateway.script.append((500, {"echo": "x" * 105 + SECRET}))
        with self.assertRaises(UserError) as caught:
            connector.send_text("+51995955955", "Hola")
        self.assertNotIn(SECRET[:5], str(caught.exception))
        self.assertNotIn(SECRET, json.dumps(connector.read(["name", "url"])))

    def test_answer_is_a_short_redacted_excerpt(self):
        """A gateway's answer shows as at most 120 characters on one line, its key redacted however escaped."""
        key = 'sk-live"7f/3a 9c'
        connector = self.connector(api_key=key)
        body = {"error": "boom\r\nInjected: header", "echo": key, "pad": "y" * 5000}
        for status, action in ((500, "send"), (401, "send"), (500, "test")):
            self.gateway.script.append((status, body))
            with self.assertRaises(UserError) as caught:
                if action == "send":
                    connector.send_text("+51995955955", "Hola")
                else:
                    self.send_test_message(connector)
            message = str(caught.exception.args[0])
            self.assertNotIn("7f", message)
            self.assertIn("***", message)
            self.assertNotIn("\n", message)
            self.assertLess(message.count("y"), 120, "no more than an excerpt of the answer")
            self.assertLess(len(message), 400)
