#!/usr/bin/env python3
"""Screenshots of the main screens for the README and the apps page (static/description/).

Run it against a server started with ``./dev start`` (demo data, admin/admin):

    python3 tools/screenshots.py [--url http://localhost:8069] [--login admin] [--password admin]

It drives headless Chromium over the DevTools protocol (the ``websocket-client`` package Odoo's
browser tests use) and writes one PNG per screen.
"""

import argparse
import base64
import json
import os
import subprocess
import tempfile
import time
import urllib.request

import websocket

OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "static", "description")
SCREENS = [
    ("dashboard.png", "/odoo/action-payment_dunning.action_collections_dashboard"),
    ("orders.png", "/odoo/action-payment_dunning.action_payment_order"),
    ("order.png", "/odoo/action-payment_dunning.action_payment_order/{order}"),
    ("plan.png", "/odoo/action-payment_dunning.action_service_plan/{plan}"),
    ("template.png", "/odoo/action-payment_dunning.action_dunning_template/{template}"),
    ("aging.png", "/odoo/action-payment_dunning.action_payment_dunning_aging"),
    ("settings.png", "/odoo/action-payment_dunning.action_collections_settings"),
]


class Browser:
    def __init__(self, port=9333):
        self.profile = tempfile.mkdtemp()
        self.process = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={self.profile}", f"--remote-debugging-port={port}", "--window-size=1400,900",
             "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _attempt in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json") as answer:
                    tabs = json.load(answer)
                break
            except OSError:
                time.sleep(0.2)
        page = next(tab for tab in tabs if tab["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], suppress_origin=True)
        self.last_id = 0
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1, mobile=False)

    def call(self, method, **params):
        self.last_id += 1
        self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.last_id:
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        return result.get("result", {}).get("value")

    def open(self, url, wait=5):
        self.call("Page.navigate", url=url)
        time.sleep(wait)

    def screenshot(self, path):
        # transient notifications (e.g. a bus reconnection notice) are not part of the screen
        self.evaluate("document.querySelectorAll('.o_notification_manager .o_notification').forEach(n => n.remove())")
        with open(path, "wb") as file:
            file.write(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self):
        self.process.kill()


def first_id(browser, url, model, domain):
    """The id of the first record of ``domain``, asked through the web client's JSON-RPC."""
    payload = json.dumps(
        {"jsonrpc": "2.0", "method": "call", "params": {"model": model, "method": "search", "args": [domain],
                                                        "kwargs": {"limit": 1}}}
    )  # fmt: skip
    script = (
        f"fetch('{url}/web/dataset/call_kw', {{method: 'POST', headers: {{'Content-Type': 'application/json'}}, "
        f"body: {json.dumps(payload)}}}).then(r => r.json()).then(r => r.result[0])"
    )
    return browser.evaluate(script)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://localhost:8069")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    args = parser.parse_args()
    browser = Browser()
    try:
        browser.open(f"{args.url}/web/login", wait=2)
        browser.evaluate(
            f"document.querySelector('#login').value = {json.dumps(args.login)};"
            f"document.querySelector('#password').value = {json.dumps(args.password)};"
            "document.querySelector('form.oe_login_form').submit()"
        )
        time.sleep(3)
        ids = {
            "order": first_id(browser, args.url, "payment.order", [["state", "=", "overdue"]]),
            "plan": first_id(browser, args.url, "service.plan", [["payment_mode", "=", "installments"]]),
            "template": first_id(browser, args.url, "dunning.template", [["is_default", "=", True]]),
        }
        for filename, path in SCREENS:
            browser.open(args.url + path.format(**ids))
            target = os.path.join(OUTPUT, filename)
            browser.screenshot(target)
            print("wrote", os.path.normpath(target))
    finally:
        browser.close()


if __name__ == "__main__":
    main()
