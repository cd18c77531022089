import json
import time

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from .common import LocalGatewayMixin, PaymentDunningCase

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

    def test_busy_gateway_is_retried(self):
        connector = self.connector(retries=3)
        self.gateway.script.extend([(429, {"error": "slow down"}), (503, {}), (200, {"id": "ok-3"})])
        self.assertEqual(connector.send_text("+51995955955", "Hola"), "ok-3")
        self.assertEqual(len(self.gateway.requests), 3)

    def test_retries_run_out_with_the_reason(self):
        connector = self.connector(retries=1)
        self.gateway.script.extend([(500, {"error": "boom"}), (500, {"error": "boom again"})])
        with self.assertRaisesRegex(UserError, "HTTP 500.*boom again"):
            connector.send_text("+51995955955", "Hola")
        self.assertEqual(len(self.gateway.requests), 2)

    def test_rejected_key_is_not_retried(self):
        connector = self.connector(retries=3)
        self.gateway.script.append((401, {"error": f"invalid token {SECRET}"}))
        with self.assertRaisesRegex(UserError, "API key rejected") as caught:
            connector.send_text("+51995955955", "Hola")
        self.assertEqual(len(self.gateway.requests), 1)
        self.assertNotIn(SECRET, str(caught.exception), "the key is never repeated in an error")

    def test_not_found_points_at_the_url(self):
        connector = self.connector()
        self.gateway.script.append((404, {}))
        with self.assertRaisesRegex(UserError, "check the client URL"):
            connector.send_text("+51995955955", "Hola")

    def test_timeout_is_retried_then_reported(self):
        connector = self.connector(timeout=1, retries=1)
        self.gateway.hang_seconds = 1.5
        self.gateway.script.extend(["hang", "hang"])
        with self.assertRaisesRegex(UserError, "did not answer within 1 seconds"):
            connector.send_text("+51995955955", "Hola")
        self.assertEqual(len(self.gateway.requests), 2)

    def test_rate_limit_spaces_messages(self):
        connector = self.connector(rate_limit=2)
        # two messages went out 59.7 s ago: the next one waits for the minute to pass
        earlier = time.monotonic() - 59.7
        connector._sent_times[connector.id].extend([earlier, earlier])
        started = time.monotonic()
        connector.send_text("+51995955955", "Hola")
        self.assertGreaterEqual(time.monotonic() - started, 0.25)
        self.assertEqual(len(connector._sent_times[connector.id]), 2)
        connector.rate_limit = 0
        started = time.monotonic()
        connector.send_text("+51995955955", "Hola")
        self.assertLess(time.monotonic() - started, 0.25, "no limit, no wait")

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
        connector = self.connector()
        result = connector.action_test_connection()
        self.assertEqual(result["params"]["type"], "success")
        self.assertEqual(self.gateway.requests[0]["method"], "GET")
        self.gateway.script.append((403, {}))
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

    def test_key_never_logged(self):
        connector = self.connector(retries=1)
        self.gateway.script.extend([(500, {"echo": SECRET}), (500, {"echo": SECRET})])
        with (
            self.assertLogs("odoo.addons.payment_dunning", level="DEBUG") as logs,
            self.assertRaises(UserError),
        ):
            connector.send_text("+51995955955", "Hola")
        self.assertTrue(logs.output)
        self.assertFalse([line for line in logs.output if SECRET in line])
        self.assertNotIn(SECRET, json.dumps(connector.read(["name", "url"])))
