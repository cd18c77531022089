#!/usr/bin/env python3
"""Benchmark: one worker drains the send queue against a local gateway and a local SMTP server.

Seeds N queued messages (``--channels both``: half by email, half by WhatsApp, one template with
both channels over N/2 orders; or all by one channel) in a separate process, then measures, in
this process, one worker calling ``_cron_send_queue()`` until the queue is empty, with every
guarantee on (a commit before and after each message, the outcome recorded, chatter entries
written) and the rate limit off. Prints
messages per second and this process's memory before and after.

    python3 bench/bench_send_queue.py -c .devenv/odoo.conf -d DB [--messages 20000]
"""

import os
import resource
import subprocess
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
    seed_orders,
    states,
    superuser_env,
    template,
)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from odoo_script import load_registry, script_arguments

TARGET = 150  # messages per second per worker


def rss_mib():
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def seed_main(args):
    registry = load_registry(args)
    with superuser_env(registry) as env:
        cleanup(env)
        orders = env["payment.order"]
        count = args.messages // 2 if args.channels == "both" else args.messages
        for start in range(0, count, 1000):
            orders |= seed_orders(env, min(1000, count - start), prefix=f"{TAG} {start}")
            env.cr.commit()
        channels = {"both": (True, True), "whatsapp": (False, True), "email": (True, False)}[args.channels]
        lines = queue(env, [template(env, f"{TAG} {args.channels}", *channels)], orders)
        env.cr.commit()
        print(f"seeded {len(lines)} queued messages over {len(orders)} orders", flush=True)


def main():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--channels", choices=("both", "whatsapp", "email"), default="both")
    parser.add_argument("--seed", action="store_true", help="internal: seed in this process and exit")
    args = parser.parse_args()
    if args.seed:
        return seed_main(args)
    subprocess.run(
        [
            sys.executable,
            __file__,
            *("-c", args.config, "-d", args.database, "--messages", str(args.messages)),
            *("--channels", args.channels, "--seed"),
        ],
        check=True,
    )
    registry = load_registry(args)
    gateway = FakeGateway(keep_requests=False)
    sink = SmtpSink()
    try:
        with superuser_env(registry) as env:
            configure(env, gateway.url, sink.port)
            env.cr.commit()
            lines = env["payment.order.notification"].search([("state", "=", "queued")])
            rss_before = rss_mib()
            calls = 0
            started = time.perf_counter()
            while env["payment.order.notification"]._cron_send_queue(batch_size=args.batch_size):
                env.cr.commit()
                calls += 1
            elapsed = time.perf_counter() - started
            rss_after = rss_mib()
            final = states(env, lines)
    finally:
        gateway.close()
        sink.close()
    rate = len(lines) / elapsed
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"messages: {len(lines)} in {calls} cron calls; states after: {final}")
    print(
        f"gateway requests {len(gateway.requests)} ({duplicates(gateway.requests)} duplicates), "
        f"emails received {len(sink.messages)} ({duplicates(sink.messages)} duplicates)"
    )
    print(
        f"throughput: {rate:.0f} messages/s for one worker over {elapsed:.1f}s (target {TARGET}); "
        f"RSS {rss_before:.0f} MiB before, {rss_after:.0f} MiB after, peak {peak:.0f} MiB"
    )
    ok = final == {"sent": len(lines)} and len(gateway.requests) + len(sink.messages) == len(lines)
    print("send-queue benchmark:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
