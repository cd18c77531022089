"""Load test: clerks in the web client while the jobs run, on Odoo in production mode (README, "Load").

    ./dev load --orders 1000000 --customers 50000 --clerks 50 --minutes 5 [--nodes 2]

(``./dev load`` runs this script on a fresh database, like ``./dev script``.) It seeds the
customers, orders, plans, dunning rules and message log of bench_scale, a local WhatsApp gateway
and SMTP server (real protocols, loopback only) and one Collections user per clerk; turns the
automatic tasks on with every job due now and the send queue every minute; starts ``--nodes``
Odoo processes in prefork mode (``--workers`` HTTP workers and ``--cron-workers`` cron workers
each, one database); and runs Locust (bench/load/locustfile.py, from its own virtualenv under
.devenv) for ``--minutes``. Then it stops the jobs, waits for the messages being sent, stops
Odoo and checks:

- no request failed (HTTP or Odoo error);
- no message went twice: what the gateway and the SMTP server received, per recipient and text,
  is what the log says was sent;
- no order was billed twice (a plan period, a payment code and installment);
- the jobs ran during the load.

It prints p50/p95 per action and exits non-zero when a check fails.
"""

import collections
import csv
import datetime
import email.header
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import psycopg2.errors

from odoo.tools import mute_logger

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench_scale  # noqa: E402
import devenv  # noqa: E402
from fake_gateway import FakeGateway  # noqa: E402
from odoo_script import load_registry, script_arguments, superuser_env  # noqa: E402
from send_queue_common import SmtpSink, configure, free_port  # noqa: E402

PASSWORD = "load-clerk-password"
AUTOMATIC_CRONS = (
    "payment_dunning.cron_service_plan_generate_orders",
    "payment_dunning.cron_payment_order_mark_overdue",
    "payment_dunning.cron_dunning_run",
    "payment_dunning.cron_payment_order_send_queue",
    "payment_dunning.cron_payment_order_promise_check",
)
LOCUST_VERSION = "locust==2.47.0"


def parse_args():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--due-share", type=int, default=20, help="percent of customers with a plan due now")
    parser.add_argument("--clerks", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--cron-workers", type=int, default=2)
    parser.add_argument("--drain-seconds", type=int, default=120, help="how long the messages being sent may take")
    return parser.parse_args()


# ------------------------------------------------------------------------------ setup


def seed(env, args):
    started = time.time()
    templates = bench_scale.seed(env, args)
    # the load measures the screens and the jobs, not the PDF renderer
    templates.write({"attach_statement": False})
    env["dunning.template"].search([]).write({"attach_statement": False})
    print(f"seeded {args.orders} orders and {args.customers} customers in {time.time() - started:.0f}s", flush=True)


def create_clerks(env, count):
    groups = [env.ref("base.group_user").id, env.ref("payment_dunning.group_payment_dunning_user").id]
    env["res.users"].with_context(no_reset_password=True).create(
        [
            {
                "name": f"Clerk {number}",
                "login": f"clerk{number}",
                "password": PASSWORD,
                "groups_id": [(6, 0, groups)],
                "company_id": env.company.id,
                "company_ids": [(6, 0, env.company.ids)],
                "tz": "America/Lima",
            }
            for number in range(1, count + 1)
        ]
    )


def start_jobs(env):
    """Automatic tasks on, every job due now, the send queue every minute."""
    env["res.config.settings"].create({"dunning_automatic_tasks": True, "dunning_notifications": True}).execute()
    for xmlid in AUTOMATIC_CRONS:
        cron = env.ref(xmlid)
        cron.write({"active": True, "nextcall": datetime.datetime.now() - datetime.timedelta(minutes=1)})
    env.ref("payment_dunning.cron_payment_order_send_queue").write({"interval_number": 1, "interval_type": "minutes"})


# ------------------------------------------------------------------------------ Odoo nodes and Locust


def start_nodes(args, logs):
    nodes = []
    for index in range(args.nodes):
        port = free_port()
        log = open(os.path.join(logs, f"load-node{index + 1}.log"), "w", encoding="utf-8")
        command = [
            sys.executable,
            devenv.odoo_launcher(),
            "-c",
            args.config,
            "-d",
            args.database,
            f"--http-port={port}",
            "--http-interface=127.0.0.1",
            "--log-level=warn",
            *devenv.production_options(args.workers, args.cron_workers, port),
        ]
        # a node's own port for its websocket process: two nodes on one machine
        command = [
            option if not option.startswith("--gevent-port") else f"--gevent-port={free_port()}" for option in command
        ]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        nodes.append({"process": process, "url": f"http://127.0.0.1:{port}", "log": log.name})
    for node in nodes:
        wait_until_up(node)
    return nodes


def wait_until_up(node, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if node["process"].poll() is not None:
            sys.exit(f"Odoo stopped at start-up; see {node['log']}")
        try:
            with urllib.request.urlopen(f"{node['url']}/web/login", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    sys.exit(f"Odoo did not answer within {timeout}s; see {node['log']}")


def stop_nodes(nodes):
    for node in nodes:
        if node["process"].poll() is None:
            os.killpg(node["process"].pid, signal.SIGTERM)
    for node in nodes:
        try:
            node["process"].wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(node["process"].pid, signal.SIGKILL)
            node["process"].wait()


def locust_command():
    """Locust from its own virtualenv: its gevent and greenlet must not replace Odoo's."""
    # outside the checkout: Odoo's translation export walks the module's directory, .devenv included
    venv = os.path.join(os.path.expanduser("~"), ".cache", "payment_dunning", "load-venv")
    locust = os.path.join(venv, "bin", "locust")
    if not os.path.exists(locust):
        print(f"installing Locust in {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        result = subprocess.run(
            [os.path.join(venv, "bin", "pip"), "install", "--quiet", LOCUST_VERSION],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            sys.exit(f"Locust could not be installed from PyPI ({LOCUST_VERSION}): is PyPI reachable?")
    return locust


def run_locust(args, nodes, logs):
    prefix = os.path.join(logs, "load")
    environment = dict(
        os.environ,
        LOAD_DB=args.database,
        LOAD_PASSWORD=PASSWORD,
        LOAD_HOSTS=",".join(node["url"] for node in nodes),
    )
    command = [
        locust_command(),
        "-f",
        os.path.join(HERE, "locustfile.py"),
        "--headless",
        "--users",
        str(args.clerks),
        "--spawn-rate",
        str(max(1, args.clerks // 10)),
        "--run-time",
        f"{int(args.minutes * 60)}s",
        "--stop-timeout",
        "30",
        "--csv",
        prefix,
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    print(f"{args.clerks} clerks for {args.minutes:g} min on {len(nodes)} node(s)", flush=True)
    subprocess.run(command, env=environment, check=False)
    return prefix


# ------------------------------------------------------------------------------ results


def read_stats(prefix):
    with open(f"{prefix}_stats.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    failures = []
    if os.path.exists(f"{prefix}_failures.csv"):
        with open(f"{prefix}_failures.csv", encoding="utf-8") as handle:
            failures = list(csv.DictReader(handle))
    if os.path.exists(f"{prefix}_exceptions.csv"):
        with open(f"{prefix}_exceptions.csv", encoding="utf-8") as handle:
            failures += [
                {"Name": "exception", "Error": row["Message"], "Occurrences": row["Count"]}
                for row in csv.DictReader(handle)
            ]
    return rows, failures


def print_stats(rows, failures):
    print(f"\n{'action':32} {'requests':>9} {'failures':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for row in rows:
        print(
            f"{row['Name'][:32]:32} {row['Request Count']:>9} {row['Failure Count']:>9} "
            f"{row['50%']:>8} {row['95%']:>8} {row['99%']:>8}"
        )
    for failure in failures[:10]:
        print(f"  failure: {failure['Name']}: {failure['Error'][:160]} ({failure['Occurrences']}x)")


def stop_jobs_and_drain(env_factory, seconds):
    """The jobs off, then wait until no message is being sent, so that what the servers received and
    the log can be compared. A job that is running holds its row: it is switched off when it ends."""
    deadline = time.time() + seconds
    while True:
        with env_factory() as env:
            running = switch_off_jobs(env)
            env.cr.execute("SELECT count(*) FROM payment_order_notification WHERE state = 'sending'")
            sending = env.cr.fetchone()[0]
        if (not running and not sending) or time.time() > deadline:
            return running, sending
        time.sleep(2)


def switch_off_jobs(env):
    """Switch off the jobs that are not running; the names of those still running."""
    running = []
    for cron_id in cron_ids(env):
        try:
            # the lock timeout is expected (the job is running): not an error of the run
            with env.cr.savepoint(), mute_logger("odoo.sql_db"):
                env.cr.execute("SET LOCAL lock_timeout = '500ms'")
                env.cr.execute("UPDATE ir_cron SET active = false WHERE id = %s AND active", [cron_id])
        except (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure):
            # locked by the worker running it, or changed by it meanwhile
            running.append(cron_id)
    env.cr.commit()
    return running


def cron_ids(env):
    return [env.ref(xmlid).id for xmlid in AUTOMATIC_CRONS]


def received_whatsapp(gateway):
    received = collections.Counter()
    for request in gateway.requests:
        try:
            payload = json.loads(request["body"] or b"{}")
        except ValueError:
            continue
        if "number" in payload:
            received[(payload["number"].lstrip("+"), payload.get("body"))] += 1
    return received


def decoded_subject(subject):
    """The subject as the log keeps it: unfolded and decoded from its RFC 2047 words."""
    unfolded = re.sub(r"\r?\n[ \t]", " ", subject)
    return " ".join(str(email.header.make_header(email.header.decode_header(unfolded))).split())


def check_messages(env, since, gateway, smtp):
    problems = []
    env.cr.execute(
        """
        SELECT channel, recipient, CASE WHEN channel = 'email' THEN subject ELSE body END, count(*)
          FROM payment_order_notification
         WHERE state = 'sent' AND sent_at >= %s
         GROUP BY 1, 2, 3
        """,
        [since],
    )
    logged = {"email": collections.Counter(), "whatsapp": collections.Counter()}
    for channel, recipient, text, count in env.cr.fetchall():
        key = (recipient.lstrip("+"), text) if channel == "whatsapp" else (recipient, " ".join((text or "").split()))
        logged[channel][key] += count
    sent = {
        "whatsapp": received_whatsapp(gateway),
        "email": collections.Counter(
            (rcpt, decoded_subject(subject)) for rcpts, subject in smtp.messages for rcpt in rcpts
        ),
    }
    for channel in ("whatsapp", "email"):
        logged_counts = logged[channel]
        twice = sum(count - logged_counts[key] for key, count in sent[channel].items() if count > logged_counts[key])
        print(f"{channel}: {sum(sent[channel].values())} received, {sum(logged[channel].values())} logged as sent")
        if twice:
            problems.append(f"{twice} {channel} message(s) received more often than the log sent them")
            extra = [key for key, count in sent[channel].items() if count > logged_counts[key]][:3]
            for key in extra:
                print(f"  received {sent[channel][key]}x, logged {logged_counts[key]}x: {key!r}")
                print(f"    logged for that recipient: {[k for k in logged_counts if k[0] == key[0]][:3]!r}")
    return problems


def check_billing(env):
    problems = []
    env.cr.execute(
        """
        SELECT count(*) FROM (SELECT 1 FROM payment_order_line WHERE plan_id IS NOT NULL
                               GROUP BY plan_id, plan_due_date HAVING count(*) > 1) twice
        """
    )
    if env.cr.fetchone()[0]:
        problems.append("a plan period was billed twice")
    env.cr.execute(
        """
        SELECT count(*) FROM (SELECT 1 FROM payment_order WHERE payment_code IS NOT NULL
                               GROUP BY company_id, payment_code, installment HAVING count(*) > 1) twice
        """
    )
    if env.cr.fetchone()[0]:
        problems.append("a payment code and installment was billed twice")
    env.cr.execute("SELECT count(*) FROM payment_order WHERE balance < 0")
    if env.cr.fetchone()[0]:
        problems.append("an order's balance went below zero")
    return problems


def check_jobs(env, since):
    # a job that reports work left is called again at once, without a "last call": its progress rows say it ran
    env.cr.execute(
        """
        SELECT c.cron_name, c.lastcall, (SELECT count(*) FROM ir_cron_progress p
                                          WHERE p.cron_id = c.id AND p.create_date >= %s)
          FROM ir_cron c WHERE c.id IN %s ORDER BY c.id
        """,
        [since, tuple(cron_ids(env))],
    )
    problems = []
    for name, lastcall, rounds in env.cr.fetchall():
        label = name.get("en_US") if isinstance(name, dict) else name
        ran = bool(rounds or (lastcall and lastcall >= since))
        print(f"job {label}: {'ran' if ran else 'DID NOT RUN'} ({rounds} round(s), last call {lastcall})")
        if not ran:
            problems.append(f"the job {label} did not run during the load")
    env.cr.execute(
        "SELECT state, count(*) FROM payment_order_notification WHERE create_date >= %s GROUP BY 1 ORDER BY 1",
        [since],
    )
    print("messages queued during the load, by state: " + ", ".join(f"{s} {c}" for s, c in env.cr.fetchall()))
    env.cr.execute(
        "SELECT count(*), coalesce(sum(amount), 0) FROM payment_order_payment WHERE create_date >= %s", [since]
    )
    count, amount = env.cr.fetchone()
    print(f"payments registered during the load: {count} ({amount:.2f})")
    return problems


def node_errors(nodes):
    errors = 0
    for node in nodes:
        with open(node["log"], encoding="utf-8", errors="replace") as handle:
            errors += sum(1 for line in handle if " ERROR " in line or " CRITICAL " in line)
    return errors


def main():
    args = parse_args()
    registry = load_registry(args)
    logs = os.path.join(devenv.DEVENV, "logs")
    os.makedirs(logs, exist_ok=True)
    gateway = FakeGateway(keep_requests=True)
    smtp = SmtpSink()
    with superuser_env(registry) as env:
        seed(env, args)
        configure(env, gateway.url, smtp.port)
        create_clerks(env, args.clerks)
        env.cr.execute("SELECT now() AT TIME ZONE 'UTC'")
        since = env.cr.fetchone()[0]
        start_jobs(env)
        env.cr.commit()
    nodes = start_nodes(args, logs)
    with superuser_env(registry) as env:
        # the cron workers sleep a minute between rounds unless told that a job is due
        env["ir.cron"]._notifydb()
    problems = []
    try:
        prefix = run_locust(args, nodes, logs)
        running, sending = stop_jobs_and_drain(lambda: superuser_env(registry), args.drain_seconds)
        if running or sending:
            problems.append(
                f"after {args.drain_seconds}s, {len(running)} job(s) still running and {sending} message(s) "
                "still being sent"
            )
    finally:
        stop_nodes(nodes)
    rows, failures = read_stats(prefix)
    print_stats(rows, failures)
    total = next((row for row in rows if row["Name"] == "Aggregated"), None)
    if not total or int(total["Request Count"]) == 0:
        problems.append("no request was made")
    elif int(total["Failure Count"]):
        problems.append(f"{total['Failure Count']} request(s) failed")
    exceptions = sum(int(f["Occurrences"]) for f in failures if f["Name"] == "exception")
    if exceptions:
        problems.append(f"{exceptions} exception(s) in the clerks' script")
    with superuser_env(registry) as env:
        problems += check_jobs(env, since)
        problems += check_messages(env, since, gateway, smtp)
        problems += check_billing(env)
    errors = node_errors(nodes)
    print(f"ERROR lines in the Odoo logs: {errors} ({', '.join(node['log'] for node in nodes)})")
    if errors:
        problems.append(f"{errors} ERROR line(s) in the Odoo logs")
    gateway.close()
    smtp.close()
    for problem in problems:
        print(f"FAILED: {problem}")
    print("load test OK" if not problems else "load test FAILED", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
