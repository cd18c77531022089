"""Benchmark: WhatsApp webhook events posted to a running Odoo, stored once each, processed by the job.

    ./dev script bench/bench_webhooks.py --events 10000 --senders 16 [--workers 2 --cron-workers 1]

Seeds customers with WhatsApp numbers, open orders and sent WhatsApp reminders (each with the
provider's message id), then starts Odoo on this database (prefork mode, its cron workers running
the event job) and posts, from ``--senders`` threads over kept-alive connections, WAHA webhooks
signed with HMAC-SHA512: per reminder "delivered" and "read", a share of customer replies, and a
share of events posted twice (as gateways retry). It prints the events per minute the endpoint
took, p50/p95 of its answers, then waits for the job and prints how long it took. Checks:

- every request answered 200 (no event refused or lost);
- every distinct event is stored exactly once, the repeated ones not again;
- every event is processed (none left to process or in error) within ``--drain-seconds``;
- every reminder shows "read", every reply is in its customer's chatter;
- the endpoint took at least ``--min-rate`` events per minute.
"""

import hashlib
import hmac
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
sys.path.insert(0, os.path.join(HERE, "load"))
import devenv  # noqa: E402
from odoo_script import load_registry, script_arguments, superuser_env  # noqa: E402
from run_load import start_nodes, stop_nodes  # noqa: E402

SIGNING_KEY = "bench-webhook-hmac"


def parse_args():
    parser = script_arguments(__doc__)
    parser.add_argument("--events", type=int, default=10000, help="distinct events to post")
    parser.add_argument("--replies", type=float, default=0.2, help="share of the events that are customer replies")
    parser.add_argument("--repeats", type=float, default=0.05, help="share of events posted a second time")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cron-workers", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--drain-seconds", type=int, default=600)
    parser.add_argument("--min-rate", type=float, default=10000, help="events per minute the endpoint must take")
    return parser.parse_args()


def seed(env, args):
    """Customers with a number and an open order, the reminders already sent to them, and a WAHA gateway."""
    env["ir.config_parameter"].set_param("payment_dunning.outbound_allowlist", "127.0.0.1")
    gateway = env["qrapi.connector"].create(
        {"name": "bench-webhooks", "preset": "waha", "url": "http://127.0.0.1:9", "api_key": "k", "instance": "default"}
    )
    gateway.webhook_signing_key = SIGNING_KEY
    company = env.company
    reminders = int(args.events * (1 - args.replies)) // 2
    cr = env.cr
    cr.execute(
        """
        INSERT INTO res_partner (name, collection_whatsapp, active, type, is_company, autopost_bills,
                                 create_date, write_date)
        SELECT 'Webhook customer ' || g, '+5190' || lpad(g::text, 7, '0'), true, 'contact', true, 'ask', now(), now()
          FROM generate_series(1, %s) g
        RETURNING id
        """,
        (args.customers,),
    )
    partner_ids = [row[0] for row in cr.fetchall()]
    cr.execute("UPDATE res_partner SET commercial_partner_id = id WHERE id = ANY(%s)", (partner_ids,))
    cr.execute(
        """
        INSERT INTO res_partner_collection_contact (partner_id, kind, value, sequence, create_date, write_date)
        SELECT id, 'mobile', collection_whatsapp, 1, now(), now() FROM res_partner WHERE id = ANY(%s)
        """,
        (partner_ids,),
    )
    env.registry.clear_cache()
    orders = env["payment.order"].create(
        [
            {"partner_id": pid, "amount": 100.0, "due_date": "2026-01-31", "company_id": company.id}
            for pid in partner_ids
        ]
    )
    cr.execute(
        """
        INSERT INTO payment_order_notification (partner_id, company_id, channel, state, attempts, recipient,
                                                gateway_id, provider_message_id, sent_at, create_date, write_date)
        SELECT p, %s, 'whatsapp', 'sent', 1, 'n', %s, 'true_bench_' || g, now(), now(), now()
          FROM generate_series(1, %s) g, LATERAL (SELECT (%s::int[])[1 + g %% %s] AS p) x
        RETURNING id, partner_id
        """,
        (company.id, gateway.id, reminders, partner_ids, len(partner_ids)),
    )
    lines = cr.fetchall()
    order_of = dict(zip(partner_ids, orders.ids, strict=True))
    cr.execute(
        "INSERT INTO payment_order_notification_rel (notification_id, order_id) "
        "SELECT * FROM unnest(%s::int[], %s::int[])",
        ([line for line, _p in lines], [order_of[p] for _l, p in lines]),
    )
    return gateway, reminders


def events(args, reminders):
    """The WAHA bodies: "delivered" and "read" of each reminder, and the replies."""
    bodies = []
    for index in range(1, reminders + 1):
        for ack, name in ((2, "DEVICE"), (3, "READ")):
            payload = {"id": f"true_bench_{index}", "ack": ack, "ackName": name}
            bodies.append(
                {"id": f"evt_ack_{index}_{ack}", "event": "message.ack", "session": "default", "payload": payload}
            )
    for index in range(args.events - len(bodies)):
        number = f"5190{1 + index % args.customers:07d}"
        payload = {
            "id": f"false_{number}@c.us_{index}",
            "from": f"{number}@c.us",
            "fromMe": False,
            "body": f"Ya pagué {index}",
        }
        bodies.append({"id": f"evt_msg_{index}", "event": "message", "session": "default", "payload": payload})
    random.Random(7).shuffle(bodies)
    # statuses of one reminder arrive in order (the job keeps the furthest anyway)
    repeats = random.Random(8).sample(bodies, int(len(bodies) * args.repeats))
    return [json.dumps(body).encode() for body in bodies + repeats]


def post_all(node_urls, path, bodies, senders):
    """Post every body from ``senders`` threads; return (seconds, latencies, failures)."""
    latencies, failures = [], []
    lock = threading.Lock()
    queue = list(enumerate(bodies))

    def sender(number):
        host, port = node_urls[number % len(node_urls)].removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        while True:
            with lock:
                if not queue:
                    break
                _index, body = queue.pop()
            signature = hmac.new(SIGNING_KEY.encode(), body, hashlib.sha512).hexdigest()
            started = time.perf_counter()
            try:
                connection.request(
                    "POST", path, body, {"Content-Type": "application/json", "X-Webhook-Hmac": signature}
                )
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                status = repr(error)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    failures.append(status)
        connection.close()

    threads = [threading.Thread(target=sender, args=(number,)) for number in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, failures


def wait_processed(registry, gateway_id, deadline_seconds):
    started = time.perf_counter()
    while time.perf_counter() - started < deadline_seconds:
        with superuser_env(registry) as env:
            env.cr.execute(
                "SELECT count(*) FILTER (WHERE state = 'new'), count(*) FROM payment_dunning_whatsapp_event "
                "WHERE gateway_id = %s",
                (gateway_id,),
            )
            left, total = env.cr.fetchone()
        if not left:
            return time.perf_counter() - started, total
        time.sleep(1)
    return None, total


def check(env, gateway, distinct, reminders, replies):
    problems = []
    env.cr.execute(
        "SELECT count(*), count(*) FILTER (WHERE state = 'done'), count(DISTINCT event_key) "
        "FROM payment_dunning_whatsapp_event WHERE gateway_id = %s",
        (gateway.id,),
    )
    stored, done, keys = env.cr.fetchone()
    print(f"events stored: {stored} (distinct posted: {distinct}), processed: {done}")
    if stored != distinct or keys != distinct:
        problems.append(f"{stored} events stored for {distinct} distinct ones posted")
    if done != stored:
        problems.append(f"{stored - done} event(s) not processed")
    env.cr.execute(
        "SELECT count(*) FROM payment_order_notification WHERE gateway_id = %s AND delivery_status = 'read'",
        (gateway.id,),
    )
    read = env.cr.fetchone()[0]
    print(f"reminders read: {read} / {reminders}")
    if read != reminders:
        problems.append(f"{reminders - read} reminder(s) not shown as read")
    env.cr.execute("SELECT count(*) FROM mail_message WHERE model = 'res.partner' AND body LIKE %s", ("%Ya pagué%",))
    posted = env.cr.fetchone()[0]
    print(f"replies in the customers' chatter: {posted} / {replies}")
    if posted != replies:
        problems.append(f"{posted} replies in the chatter for {replies} posted")
    return problems


def main():
    args = parse_args()
    registry = load_registry(args)
    logs = os.path.join(devenv.DEVENV, "logs")
    os.makedirs(logs, exist_ok=True)
    with superuser_env(registry) as env:
        gateway, reminders = seed(env, args)
        path = f"/payment_dunning/webhook/{gateway.id}/{gateway.webhook_secret}"
        env.cr.commit()
    bodies = events(args, reminders)
    distinct = len(set(bodies))
    replies = args.events - 2 * reminders
    nodes = start_nodes(args, logs)
    problems = []
    try:
        seconds, latencies, failures = post_all([node["url"] for node in nodes], path, bodies, args.senders)
        rate = len(bodies) / seconds * 60
        latencies.sort()
        p50, p95 = statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.95)] * 1000
        print(
            f"posted {len(bodies)} events ({distinct} distinct) in {seconds:.1f} s: {rate:,.0f} events/min; "
            f"p50 {p50:.0f} ms, p95 {p95:.0f} ms"
        )
        if failures:
            problems.append(f"{len(failures)} request(s) not answered 200, e.g. {failures[:3]}")
        if rate < args.min_rate:
            problems.append(f"the endpoint took {rate:,.0f} events/min, under {args.min_rate:,.0f}")
        drained, _total = wait_processed(registry, gateway.id, args.drain_seconds)
        if drained is None:
            problems.append(f"events still to process after {args.drain_seconds}s")
        else:
            print(f"job: all events processed {drained:.1f} s after the last post")
    finally:
        stop_nodes(nodes)
    with superuser_env(registry) as env:
        problems += check(env, env["qrapi.connector"].browse(gateway.id), distinct, reminders, replies)
    for problem in problems:
        print(f"FAILED: {problem}")
    print("webhook benchmark OK" if not problems else "webhook benchmark FAILED", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
