"""Seeding and checks shared by the send-queue proofs and benchmark (local gateway and SMTP server)."""

import collections
import logging
import os
import socket
import sys
import threading
from email.parser import BytesHeaderParser

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from fake_gateway import FakeGateway
from odoo_script import superuser_env

TAG = "bench-send-queue"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpSink:
    """A real SMTP server on 127.0.0.1 keeping the subject and recipients of what it receives."""

    def __init__(self, port=None):
        from aiosmtpd.controller import Controller  # only the scripts that mail need it

        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's log of every command
        self.messages = []
        self.lock = threading.Lock()
        self.port = port or free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope):
        # the headers only: parsing whole messages here would slow the worker it shares a process with
        headers = BytesHeaderParser().parsebytes(envelope.content)
        with self.lock:
            self.messages.append((tuple(envelope.rcpt_tos), str(headers["Subject"])))
        return "250 OK"

    def close(self):
        self.controller.stop()


# the local gateway and SMTP server, allowed by the outbound policy as an administrator would
OUTBOUND_ALLOWLIST = "127.0.0.1"


def configure(env, gateway_url, smtp_port, timeout=15):
    """A gateway and a mail server of the bench, chosen in Settings; the rate limit off."""
    env["ir.config_parameter"].set_param("payment_dunning.outbound_allowlist", OUTBOUND_ALLOWLIST)
    connector = env["qrapi.connector"].create(
        {"name": TAG, "url": gateway_url, "api_key": "bench-key", "rate_limit": 0, "retries": 2, "timeout": timeout}
    )
    server = env["ir.mail_server"].create(
        {"name": TAG, "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_encryption": "none"}
    )
    params = env["ir.config_parameter"]
    params.set_param("payment_dunning.connector_id", connector.id)
    params.set_param("payment_dunning.mail_server_id", server.id)
    env.company.email = "cobranzas@bench.example.com"
    open_sending_window(env.company)
    return connector, server


def open_sending_window(company):
    """The bench sends whenever it runs: the company's sending window open all day, every day."""
    company.write(
        {
            "dunning_window_start": 0.0,
            "dunning_window_end": 24.0,
            **{f"dunning_send_{day}": True for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        }
    )


def template(env, name, email=True, whatsapp=True):
    # the order's reference and the template's name make each message's text unique
    return env["dunning.template"].create(
        {
            "name": name,
            "subject": f"{name} @variable_orden",
            "body": f"{name}: hola @variable_nombre, @variable_orden vence @variable_fecha_vencimiento",
            "channel_email": email,
            "channel_whatsapp": whatsapp,
            # the bench measures the queue, not the PDF renderer (statements are on by default)
            "attach_statement": False,
        }
    )


def seed_orders(env, count, prefix=TAG):
    partners = env["res.partner"].create(
        [
            {
                "name": f"{prefix} {index}",
                "collection_whatsapp": f"+5199{index:07d}",
                "collection_email": f"cliente{index}@bench.example.com",
            }
            for index in range(count)
        ]
    )
    return env["payment.order"].create(
        [
            {"partner_id": partner.id, "due_date": "2030-01-01", "amount": 10.0 + index, "concept": prefix}
            for index, partner in enumerate(partners)
        ]
    )


def queue(env, templates, orders):
    lines = env["payment.order.notification"]
    for rule in templates:
        lines |= lines._queue(rule, orders)
    return lines


def states(env, lines):
    return dict(collections.Counter(env["payment.order.notification"].browse(lines.ids).mapped("state")))


def duplicates(items):
    return sum(count - 1 for count in collections.Counter(items).values() if count > 1)


def cleanup(env):
    """Remove what an earlier run of a bench script left (the scripts run on a throw-away database)."""
    orders = env["payment.order"].search([("concept", "=like", f"{TAG}%")])
    env["payment.order.notification"].search([("order_ids", "in", orders.ids)]).unlink()
    orders.filtered(lambda order: order.state in ("pending", "overdue")).action_cancel()
    orders.filtered(lambda order: order.state == "cancelled").unlink()
    env["res.partner"].search([("name", "=like", f"{TAG}%")]).unlink()
    env["dunning.template"].search([("name", "=like", f"{TAG}%")]).unlink()
    env["qrapi.connector"].search([("name", "=", TAG)]).unlink()
    env["ir.mail_server"].search([("name", "=", TAG)]).unlink()
    env.cr.commit()


def run_workers(registry, count, batch_size=100):
    """``count`` workers drain the queue at once, each calling the cron until nothing is left."""
    barrier = threading.Barrier(count)
    results = {}
    errors = []

    def worker(name):
        try:
            with superuser_env(registry) as env:
                barrier.wait()
                sent = 0
                while True:
                    done = env["payment.order.notification"]._cron_send_queue(batch_size=batch_size)
                    env.cr.commit()
                    if not done:
                        break
                    sent += done
                results[name] = sent
        except Exception as error:  # reported by the caller
            errors.append(repr(error))

    threads = [threading.Thread(target=worker, args=(f"W{index}",)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


__all__ = ["FakeGateway", "superuser_env"]
