"""Collections clerks in the web client, as Locust users (README, "Load").

Each simulated clerk logs in with its own account and, with think times of 1 to 3 seconds, does
what the web client asks the server for on each screen: the orders list and its totals, the
dashboard, the aging report, a customer form, and, less often, registers a payment or notifies an
order. Every request is the JSON-RPC call the screen makes, named after the screen.

Run by bench/load/run_load.py (which seeds the database, starts the Odoo nodes and reads the
results); the environment gives it the database (LOAD_DB), the clerks' password (LOAD_PASSWORD)
and the nodes (LOAD_HOSTS, comma-separated: each clerk works on one of them).
"""

import itertools
import os
import random

from locust import HttpUser, between, task

DATABASE = os.environ["LOAD_DB"]
PASSWORD = os.environ["LOAD_PASSWORD"]
HOSTS = os.environ["LOAD_HOSTS"].split(",")
OPEN = ["pending", "overdue"]
ORDER_LIST_FIELDS = {
    name: {}
    for name in (
        "name",
        "partner_id",
        "concept",
        "due_date",
        "days_overdue",
        "amount_total",
        "balance",
        "state",
        "currency_id",
        "last_notification_date",
    )
}
CUSTOMER_FORM_FIELDS = {
    name: {}
    for name in (
        "name",
        "email",
        "collection_email",
        "collection_whatsapp",
        "document_type",
        "document_number",
        "payment_order_count",
        "collection_message_count",
        "collection_payment_count",
        "service_plan_count",
    )
}
_clerk_numbers = itertools.count(1)


class Clerk(HttpUser):
    wait_time = between(1, 3)
    # the host is chosen per clerk in on_start (several nodes); Locust wants one to start with
    host = HOSTS[0]

    def on_start(self):
        number = next(_clerk_numbers)
        self.client.base_url = HOSTS[number % len(HOSTS)]
        self.login = f"clerk{number}"
        self.rpc_id = 0
        self.call("/web/session/authenticate", {"db": DATABASE, "login": self.login, "password": PASSWORD}, "login")
        self.odoo_context = {"lang": "en_US", "tz": "America/Lima"}

    # ---------------------------------------------------------------- JSON-RPC

    def call(self, path, params, name):
        self.rpc_id += 1
        payload = {"jsonrpc": "2.0", "method": "call", "params": params, "id": self.rpc_id}
        with self.client.post(path, json=payload, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return None
            body = response.json()
            if "error" in body:
                error = body["error"].get("data", {}).get("message") or body["error"].get("message")
                response.failure(f"{name}: {error}")
                return None
            return body.get("result")

    def call_kw(self, model, method, args, name, **kwargs):
        kwargs.setdefault("context", self.odoo_context)
        return self.call(
            f"/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": args, "kwargs": kwargs},
            name,
        )

    def random_open_order(self, name):
        ids = self.call_kw(
            "payment.order",
            "search",
            [[("state", "in", OPEN)]],
            name,
            offset=random.randrange(5000),
            limit=1,
            order="id desc",
        )
        return ids[0] if ids else None

    # ---------------------------------------------------------------- screens

    @task(6)
    def orders_list(self):
        domain = [("state", "in", OPEN)] if random.random() < 0.7 else []
        self.call_kw(
            "payment.order",
            "web_search_read",
            [],
            "orders list",
            domain=domain,
            specification=ORDER_LIST_FIELDS,
            offset=80 * random.randrange(5),
            limit=80,
            order="due_date ASC, id ASC",
            count_limit=10001,
        )
        self.call_kw("payment.order", "get_panel_data", [domain], "orders totals")

    @task(3)
    def dashboard(self):
        self.call_kw("payment.order", "get_dashboard_data", [], "dashboard")

    @task(2)
    def aging_report(self):
        self.call_kw(
            "payment.dunning.aging",
            "read_group",
            [[], ["balance:sum"], ["bucket"]],
            "aging report",
            lazy=False,
        )

    @task(3)
    def customer_form(self):
        order_id = self.random_open_order("customer form: pick")
        if not order_id:
            return
        [order] = self.call_kw(
            "payment.order", "web_read", [[order_id]], "customer form: order", specification={"partner_id": {}}
        ) or [{}]
        partner = order.get("partner_id")
        partner_id = partner.get("id") if isinstance(partner, dict) else partner
        if partner_id:
            self.call_kw("res.partner", "web_read", [[partner_id]], "customer form", specification=CUSTOMER_FORM_FIELDS)

    @task(1)
    def register_payment(self):
        order_id = self.random_open_order("register payment: pick")
        if not order_id:
            return
        context = dict(self.odoo_context, active_model="payment.order", active_ids=[order_id], active_id=order_id)
        wizard_id = self.call_kw(
            "payment.order.register.payment",
            "create",
            [{"amount": 1.0, "reference": f"LOAD-{self.login}-{self.rpc_id}"}],
            "register payment",
            context=context,
        )
        if wizard_id:
            self.call_kw(
                "payment.order.register.payment", "action_register", [[wizard_id]], "register payment", context=context
            )

    @task(1)
    def notify(self):
        order_id = self.random_open_order("notify: pick")
        if not order_id:
            return
        context = dict(self.odoo_context, active_model="payment.order", active_ids=[order_id], active_id=order_id)
        wizard_id = self.call_kw("payment.order.notify", "create", [{"send_again": True}], "notify", context=context)
        if wizard_id:
            self.call_kw("payment.order.notify", "action_send", [[wizard_id]], "notify", context=context)
