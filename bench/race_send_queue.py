#!/usr/bin/env python3
"""Race proof: two workers drain one send queue with several messages per order on two channels.

Seeds N orders with three templates each (two by email and WhatsApp, one by WhatsApp only): five
messages per order, several of them to the same order and customer at once. Two workers call
``_cron_send_queue()`` at the same time behind a barrier, against a local HTTP server standing in
for the gateway and a local SMTP server. Checks that the gateway received every WhatsApp message
exactly once, the SMTP server every email exactly once, and every line ends sent; prints the
throughput. Exits non-zero when the proof fails.

    python3 bench/race_send_queue.py -c .devenv/odoo.conf -d DB [--orders 400]
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from send_queue_common import (
    TAG,
    FakeGateway,
    SmtpSink,
    cleanup,
    configure,
    duplicates,
    queue,
    run_workers,
    seed_orders,
    states,
    superuser_env,
    template,
)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from odoo_script import load_registry, script_arguments


def main():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=400)
    args = parser.parse_args()
    registry = load_registry(args)
    gateway = FakeGateway(keep_requests=False)
    sink = SmtpSink()
    try:
        with superuser_env(registry) as env:
            cleanup(env)
            configure(env, gateway.url, sink.port)
            templates = [
                template(env, f"{TAG} A"),
                template(env, f"{TAG} B"),
                template(env, f"{TAG} C", email=False),
            ]
            orders = seed_orders(env, args.orders)
            lines = queue(env, templates, orders)
            env.cr.commit()
        started = time.perf_counter()
        results, errors = run_workers(registry, 2)
        elapsed = time.perf_counter() - started
        with superuser_env(registry) as env:
            final = states(env, lines)
            cleanup(env)
    finally:
        gateway.close()
        sink.close()
    expected_whatsapp = 3 * args.orders
    expected_email = 2 * args.orders
    whatsapp_dupes = duplicates(gateway.requests)
    email_dupes = duplicates(sink.messages)
    print(f"orders: {args.orders}; messages: {len(lines)} (5 per order); workers handled {results}")
    print(f"states after: {final}; errors: {errors or 'none'}")
    print(
        f"gateway requests: {len(gateway.requests)}/{expected_whatsapp}, duplicates {whatsapp_dupes}; "
        f"emails received: {len(sink.messages)}/{expected_email}, duplicates {email_dupes}"
    )
    print(f"throughput: {len(lines) / elapsed:.0f} messages/s with two workers over {elapsed:.1f}s")
    ok = (
        not errors
        and len(gateway.requests) == expected_whatsapp
        and len(sink.messages) == expected_email
        and not whatsapp_dupes
        and not email_dupes
        and final == {"sent": len(lines)}
        and sum(results.values()) == len(lines)
    )
    print("race send-queue:", "OK, every message sent exactly once" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
