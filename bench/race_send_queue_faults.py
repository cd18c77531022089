#!/usr/bin/env python3
"""Proofs of the send queue's guarantees when things go wrong, on committed data and real connections.

1. A poison message (its rule deleted, no default template) among good ones, two workers: every
   good message reaches the local gateway exactly once, the poison one ends failed ("rendering
   error"), the queue drains.
2. A worker killed (SIGKILL) while its message is with the gateway: nothing is sent again, the
   line ends failed with "outcome unknown".
3. A gateway that trickles its answer a byte at a time: the send ends at the connector's deadline
   and the line waits for a retry.
4. An SMTP server that refuses connections, then accepts: the email goes out once, after a retry,
   through the same ``mail.mail``.

    python3 bench/race_send_queue_faults.py -c .devenv/odoo.conf -d DB [--good 200]
"""

import os
import signal
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
    free_port,
    queue,
    run_workers,
    seed_orders,
    states,
    superuser_env,
    template,
)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from odoo_script import load_registry, script_arguments


def check(results, name, ok, detail):
    results.append((name, ok))
    print(f"[{'OK' if ok else 'FAILED'}] {name}: {detail}", flush=True)


def seed_one(registry, gateway_url, smtp_port, name, timeout=15, email=False, whatsapp=True):
    """One order with one queued message of a fresh template, committed."""
    with superuser_env(registry) as env:
        cleanup(env)
        configure(env, gateway_url, smtp_port, timeout=timeout)
        lines = queue(env, [template(env, f"{TAG} {name}", email=email, whatsapp=whatsapp)], seed_orders(env, 1))
        env.cr.commit()
        return lines.ids


def send_once(registry, line_ids, *paths):
    """One call of the send job; the values of the line's ``paths`` (``mail_id.state``) afterwards."""
    with superuser_env(registry) as env:
        env["payment.order.notification"]._cron_send_queue()
        env.cr.commit()
        line = env["payment.order.notification"].browse(line_ids)
        values = []
        for path in paths:
            value = line
            for name in path.split("."):
                value = value[name]
            values.append(value)
        return tuple(values)


def poison_among_good(registry, gateway, smtp_port, good, results):
    with superuser_env(registry) as env:
        cleanup(env)
        configure(env, gateway.url, smtp_port)
        default = env["dunning.template"]._get_default(env.company)
        rule = template(env, f"{TAG} poison", email=False)
        good_rule = template(env, f"{TAG} good", email=False)
        orders = seed_orders(env, good + 1)
        good_lines = queue(env, [good_rule], orders[:good])
        poison_line = queue(env, [rule], orders[good:])
        rule.unlink()
        default.is_default = False
        env.cr.commit()
    gateway.requests.clear()
    _workers, errors = run_workers(registry, 2, batch_size=50)
    with superuser_env(registry) as env:
        poison = env["payment.order.notification"].browse(poison_line.ids)
        good_states = states(env, good_lines)
        due = env["payment.order.notification"]._due_count()
        poison_state = (poison.state, poison.failure_type)
        env["dunning.template"].browse(default.ids).is_default = True
        env.cr.commit()
        cleanup(env)
    ok = (
        not errors
        and good_states == {"sent": good}
        and len(gateway.requests) == good
        and not duplicates(gateway.requests)
        and poison_state == ("failed", "render")
        and due == 0
    )
    check(
        results,
        "poison message among good ones",
        ok,
        f"good {good_states}, gateway {len(gateway.requests)} requests ({duplicates(gateway.requests)} duplicates), "
        f"poison {poison_state}, still due {due}, worker errors {errors or 'none'}",
    )


def killed_worker(registry, args, gateway, smtp_port, results):
    line_ids = seed_one(registry, gateway.url, smtp_port, "killed", timeout=60)
    gateway.requests.clear()
    gateway.hang_seconds = 30
    gateway.script[:] = ["hang"]
    child = subprocess.Popen([sys.executable, __file__, "-c", args.config, "-d", args.database, "--worker"])
    deadline = time.monotonic() + 60
    while not gateway.requests and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    reached = bool(gateway.requests)
    child.send_signal(signal.SIGKILL)
    child.wait()
    time.sleep(0.5)  # PostgreSQL notices the dead connection and frees its locks
    gateway.script.clear()
    outcome = send_once(registry, line_ids, "state", "failure_type")
    ok = reached and outcome == ("failed", "unknown") and len(gateway.requests) == 1
    check(
        results,
        "worker killed while sending",
        ok,
        f"gateway reached before the kill: {reached}; line after the next run {outcome}; "
        f"gateway requests {len(gateway.requests)} (1 = not sent again)",
    )


def trickling_gateway(registry, gateway, smtp_port, results):
    line_ids = seed_one(registry, gateway.url, smtp_port, "trickle", timeout=2)
    gateway.trickle_seconds = 0.5
    gateway.script[:] = ["trickle"]
    started = time.monotonic()
    state, failure_type, next_attempt_at = send_once(registry, line_ids, "state", "failure_type", "next_attempt_at")
    elapsed = time.monotonic() - started
    outcome = (state, failure_type, bool(next_attempt_at))
    gateway.script.clear()
    ok = elapsed < 4 and outcome == ("queued", "gateway_unreachable", True)
    check(
        results,
        "gateway trickling its answer",
        ok,
        f"send ended after {elapsed:.1f}s (deadline 2s, the answer would take 50s); line {outcome}",
    )


def smtp_refuses_then_accepts(registry, gateway, results):
    port = free_port()  # nothing listens there yet: connections are refused
    line_ids = seed_one(registry, gateway.url, port, "smtp", email=True, whatsapp=False)
    state, failure_type, first_mail = send_once(registry, line_ids, "state", "failure_type", "mail_id.id")
    first = (state, failure_type)
    with superuser_env(registry) as env:
        # time passes: the retry is due
        env.cr.execute("UPDATE payment_order_notification SET next_attempt_at = NULL WHERE id = ANY(%s)", [line_ids])
        env.cr.commit()
    sink = SmtpSink(port)
    try:
        state, attempts, mail, mail_state = send_once(
            registry, line_ids, "state", "attempts", "mail_id.id", "mail_id.state"
        )
        second = (state, attempts, mail == first_mail, mail_state)
    finally:
        sink.close()
    ok = first == ("queued", "smtp_unreachable") and second == ("sent", 2, True, "sent") and len(sink.messages) == 1
    check(
        results,
        "SMTP server refusing, then accepting",
        ok,
        f"first run {first}; second run (state, attempts, same mail.mail, its state) {second}; "
        f"emails received {len(sink.messages)}",
    )


def worker_main(args):
    registry = load_registry(args)
    with superuser_env(registry) as env:
        env["payment.order.notification"]._cron_send_queue()
        env.cr.commit()


def main():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--good", type=int, default=200)
    parser.add_argument("--worker", action="store_true", help=argparse_hidden())
    args = parser.parse_args()
    if args.worker:
        return worker_main(args)
    registry = load_registry(args)
    gateway = FakeGateway(keep_requests=False)
    sink = SmtpSink()
    results = []
    try:
        poison_among_good(registry, gateway, sink.port, args.good, results)
        killed_worker(registry, args, gateway, sink.port, results)
        trickling_gateway(registry, gateway, sink.port, results)
        smtp_refuses_then_accepts(registry, gateway, results)
    finally:
        gateway.close()
        sink.close()
    failed = [name for name, ok in results if not ok]
    print("send-queue fault proofs:", "OK, all four" if not failed else f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
