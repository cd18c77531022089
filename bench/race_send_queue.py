#!/usr/bin/env python3
"""Race proof and benchmark: two workers run ``_cron_send_queue()`` over the same queued messages.

Seeds N committed WhatsApp notifications, points a connector at a local HTTP server standing in
for the gateway (rate limit off), runs two workers at once behind a barrier, and checks that the
gateway received every message exactly once and every notification ends sent. Prints messages per
second and peak memory. Exits non-zero when the proof fails.

    python3 bench/race_send_queue.py -c .devenv/odoo.conf -d DB [--messages 2000]
"""

import collections
import os
import resource
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from odoo_script import load_registry, script_arguments, superuser_env

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from fake_gateway import FakeGateway

TAG = "race-send-queue"


def seed(env, count, gateway_url):
    connector = env["qrapi.connector"].create(
        {"name": TAG, "url": gateway_url, "api_key": "bench-key", "rate_limit": 0, "retries": 0}
    )
    template = env["dunning.template"].create(
        {
            "name": TAG,
            "body": "Hola @variable_nombre, vence @variable_fecha_vencimiento: *@variable_saldo*",
            "channel_email": False,
        }
    )
    partners = env["res.partner"].create(
        [{"name": f"{TAG} {index}", "collection_whatsapp": f"+5199{index:07d}"} for index in range(count)]
    )
    orders = env["payment.order"].create(
        [
            {"partner_id": partner.id, "due_date": "2030-01-01", "amount": 10.0 + index, "concept": TAG}
            for index, partner in enumerate(partners)
        ]
    )
    env["payment.order.notification"]._queue(template, orders)
    env.cr.commit()
    return connector


def cleanup(env):
    orders = env["payment.order"].search([("concept", "=", TAG)])
    env["payment.order.notification"].search([("order_ids", "in", orders.ids)]).unlink()
    orders.filtered(lambda order: order.state in ("pending", "overdue")).action_cancel()
    orders.filtered(lambda order: order.state == "cancelled").unlink()
    env["res.partner"].search([("name", "=like", f"{TAG} %")]).unlink()
    env["dunning.template"].search([("name", "=", TAG)]).unlink()
    env["qrapi.connector"].search([("name", "=", TAG)]).unlink()
    env.cr.commit()


def worker(registry, barrier, results, name):
    with superuser_env(registry) as env:
        barrier.wait()
        results[name] = env["payment.order.notification"]._cron_send_queue(batch_size=100)
        env.cr.commit()


def main():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    registry = load_registry(args)
    gateway = FakeGateway()
    try:
        with superuser_env(registry) as env:
            cleanup(env)
            seed(env, args.messages, gateway.url)
        barrier = threading.Barrier(2)
        results = {}
        threads = [threading.Thread(target=worker, args=(registry, barrier, results, name)) for name in ("A", "B")]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        with superuser_env(registry) as env:
            orders = env["payment.order"].search([("concept", "=", TAG)])
            states = collections.Counter(
                env["payment.order.notification"].search([("order_ids", "in", orders.ids)]).mapped("state")
            )
            cleanup(env)
    finally:
        gateway.close()
    numbers = collections.Counter(request["body"] for request in gateway.requests)
    duplicates = sum(count - 1 for count in numbers.values() if count > 1)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"messages: {args.messages}; workers sent {results}; states after: {dict(states)}")
    print(f"gateway requests: {len(gateway.requests)}, duplicates: {duplicates}")
    print(f"throughput: {args.messages / elapsed:.0f} messages/s over {elapsed:.1f}s; peak RSS {peak_mb:.0f} MiB")
    ok = len(gateway.requests) == args.messages and not duplicates and states == {"sent": args.messages}
    print("race send-queue:", "OK, every message sent once" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
