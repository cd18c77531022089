#!/usr/bin/env python3
"""Scale proof: every set-based statement of the addon at 1,000,000 orders, at the default work_mem and at 64kB.

Seeds N orders (default 1,000,000) over C customers (default N / 10) with set-based SQL: a mix of
paid, cancelled, pending and overdue orders due from 120 days ago to 30 days ahead, one line each,
service plans (an Internet plan, a router in installments and a finished plan per customer, a share
of them due now), three automatic dunning templates and a communication log of about one message
per overdue order. Then, once per work_mem setting, it times each statement below as the addon runs
it and checks the plan of every query it sends on the big tables (EXPLAIN, taken just before the
query runs, with the same parameters and session): no per-row SubPlan and no nested loop whose
repeated side reads a big relation without an index (those are quadratic).

  overdue          payment.order._cron_mark_overdue()
  eligible:NAME    the eligibility query of each automatic template (_eligible_sql)
  collect          dunning.template._collect_eligible() of the widest template
  dunning_run      dunning.template._dunning_run() (its messages are deleted afterwards)
  due_plans        the due plans (service.plan._due_plans_sql)
  lock_partners    service.plan._lock_due_partners(), one batch
  lock_plans       service.plan._lock_due_plans() of that batch
  generate         service.plan._generate_orders() (its orders are deleted afterwards)
  aging            payment.dunning.aging read_group by bucket, as the dashboard does
  dashboard        payment.order.get_dashboard_data()
  state_totals     payment.order.get_state_totals()
  search:OP VALUE  payment.order search (80 rows) and search_count on notification_count
  notification_stats  _compute_notification_stats of a page of 80 orders

    python3 bench/bench_scale.py -c .devenv/odoo.conf -d DB [--orders 1000000] [--customers 100000]
        [--work-mem default,64kB] [--only overdue,b,c] [--keep] [--explain] [--statement-timeout 600]

``--only`` takes case names or groups: a (overdue), b (eligibility and dunning run), c (order
generation), d (aging), e (dashboard and totals), f (notification searches). ``--keep`` leaves the
seed in the database; a later run with the same sizes on the same day reuses it. A query running
longer than ``--statement-timeout`` seconds is cancelled (a quadratic one would run for hours). It
commits its data and deletes it at the end. Exit status 1 when a plan is quadratic, a query was
cancelled, or a result is not the expected one or differs between the work_mem settings.
"""

import contextlib
import datetime
import json
import os
import re
import resource
import statistics
import sys
import time

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from odoo_script import load_registry, script_arguments, superuser_env

BENCH_TAG = "bench-scale"
SEED_PARAM = "payment_dunning.bench_scale_seed"
SNAPSHOT_TABLE = "bench_scale_plan_snapshot"
# relations of at least this many rows are "big": their scans show in the plan shapes
BIG_ROWS = 10_000
# ... unless "another" has no more rows than this (the companies of a VALUES list, say)
FEW_ROWS = 10
# a plan reading more than this many times the largest relation's rows is taken as quadratic
WHOLE_PASSES = 20
EXPLAINABLE = re.compile(
    r"^\s*(SELECT|WITH|UPDATE|INSERT|DELETE|CREATE\s+TEMP(ORARY)?\s+TABLE\s+\S+\s+AS)\b", re.IGNORECASE
)
BIG_TABLES = re.compile(r"payment_order|service_plan|res_partner|payment_dunning", re.IGNORECASE)
JOINS = ("Hash Join", "Merge Join", "Nested Loop")
SCANS = ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan")
# a query called at least twice this many times (once per batch) whose last calls take this many
# times as long as its first ones grows with the work already done
GROWTH_CALLS = 10
GROWTH_FACTOR = 4
# the queries that took most of a case's time, shown under it
TOP_STATEMENTS = 3
SEARCHES = ((">=", 1), ("=", 0), ("<", 2), (">", 2))


def clock():
    return time.perf_counter()


# ---------------------------------------------------------------------------------- plans


def plan_nodes(node):
    yield node
    for child in node.get("Plans", ()):
        yield from plan_nodes(child)


def big_relations(cr):
    """{relation name: estimated rows} of the relations this session sees with at least BIG_ROWS rows."""
    cr.execute("SELECT relname, reltuples FROM pg_class WHERE relkind IN ('r', 'm') AND reltuples >= %s", (BIG_ROWS,))
    return dict(cr.fetchall())


def rescanned_rows(node, sizes):
    """The most rows one execution of ``node``'s subtree reads without an index: a big relation's
    sequential scan, or a stored intermediate result read whole."""
    if node["Node Type"] in ("Materialize", "CTE Scan", "WorkTable Scan"):
        return node.get("Plan Rows", 0)
    own = sizes.get(node.get("Relation Name"), 0) if node["Node Type"] == "Seq Scan" else 0
    return max([own, *(rescanned_rows(child, sizes) for child in node.get("Plans", ()))])


def quadratic(loops, rows, sizes):
    """Reading ``rows`` rows without an index ``loops`` times: more than WHOLE_PASSES passes over the
    largest relation, for a number of loops that grows with the data."""
    largest = max(sizes.values(), default=BIG_ROWS)
    return loops > FEW_ROWS and rows > FEW_ROWS and loops * rows > WHOLE_PASSES * max(largest, BIG_ROWS)


def plan_problems(plan, sizes):
    """What makes ``plan`` (EXPLAIN's JSON "Plan") quadratic: a nested loop or a per-row SubPlan
    that reads a big relation (or result) whole for each of many rows."""
    problems = []
    hashed = set(re.findall(r"hashed (SubPlan \d+)", json.dumps(plan)))
    for node in plan_nodes(plan):
        children = node.get("Plans", ())
        if node["Node Type"] == "Nested Loop":
            outer = next(child for child in children if child.get("Parent Relationship") == "Outer")
            inner = next(child for child in children if child.get("Parent Relationship") == "Inner")
            rows = rescanned_rows(inner, sizes)
            if quadratic(outer["Plan Rows"], rows, sizes):
                problems.append(f"Nested Loop: ~{outer['Plan Rows']:,.0f} rows, each reading ~{rows:,.0f} rows")
        driving = max([node["Plan Rows"], *(c["Plan Rows"] for c in children if c["Parent Relationship"] != "SubPlan")])
        for child in children:
            if child.get("Parent Relationship") != "SubPlan" or child.get("Subplan Name") in hashed:
                continue
            rows = rescanned_rows(child, sizes)
            if quadratic(driving, rows, sizes):
                problems.append(
                    f"{child.get('Subplan Name', 'SubPlan')} run for each of ~{driving:,.0f} rows of a "
                    f"{node['Node Type']}, each reading ~{rows:,.0f} rows"
                )
    return problems


def growing_calls(entry):
    """A query run once per batch whose later calls take much longer than its first ones: each
    batch reads again what the batches before it handled (quadratic over the run)."""
    durations = entry["durations"]
    if len(durations) < GROWTH_CALLS * 2:
        return None
    first = statistics.median(durations[:GROWTH_CALLS])
    last = statistics.median(durations[-GROWTH_CALLS:])
    if last > GROWTH_FACTOR * first and last - first > 0.005:
        return (
            f"{len(durations)} calls, each slower than the one before: {first * 1000:.1f} ms for the first "
            f"{GROWTH_CALLS}, {last * 1000:.1f} ms for the last {GROWTH_CALLS}"
        )
    return None


def has_subplan(plan):
    return any(node.get("Parent Relationship") == "SubPlan" for node in plan_nodes(plan))


def plan_shape(plan, sizes):
    """The joins, aggregates and big-relation scans of ``plan``, in plan order."""
    hashed = set(re.findall(r"hashed (SubPlan \d+)", json.dumps(plan)))
    parts = []
    for node in plan_nodes(plan):
        kind = node["Node Type"]
        if node.get("Parent Relationship") == "SubPlan":
            label = "hashed SubPlan" if node.get("Subplan Name") in hashed else "SubPlan"
        elif kind in JOINS:
            join = node.get("Join Type", "Inner")
            label = kind if join == "Inner" else f"{kind} ({join})"
        elif kind in SCANS and sizes.get(node.get("Relation Name"), 0) >= BIG_ROWS:
            label = f"{kind} {node['Relation Name']}"
        elif kind == "Aggregate" and node.get("Strategy") == "Hashed":
            label = "HashAggregate"
        else:
            continue
        if label not in parts:
            parts.append(label)
    return ", ".join(parts) or plan["Node Type"]


def normalized(code):
    """One key for a query whatever the length of its VALUES or IN lists."""
    code = re.sub(r"\([^()]*%s[^()]*\)(\s*,\s*\([^()]*%s[^()]*\))+", "(…)", code)
    return re.sub(r"%s(\s*,\s*%s)+", "%s", " ".join(code.split()))


class Statements:
    """Times every query a call sends on ``cr`` and plans the first of each kind, just before it
    runs (same session, same parameters). EXPLAIN ANALYZE (``analyze``) runs the query itself:
    only inside a transaction that is rolled back."""

    def __init__(self, cr, analyze=False):
        self.cr = cr
        self.analyze = analyze
        self.sizes = big_relations(cr)
        self.seen = {}  # normalized query -> {"query", "calls", "seconds", "plan", "text"}
        self.explain_seconds = 0.0

    @contextlib.contextmanager
    def recording(self):
        from odoo.tools import SQL

        original = self.cr.execute

        def execute(query, params=None, log_exceptions=True):
            code = query.code if isinstance(query, SQL) else query
            key = normalized(code)
            entry = self.seen.get(key)
            if entry is None:
                entry = self.seen[key] = {"query": code, "calls": 0, "seconds": 0.0, "durations": []}
                entry.update(plan=None, text="")
                if EXPLAINABLE.match(code) and BIG_TABLES.search(code):
                    started = clock()
                    entry["plan"], entry["text"] = self._explain(original, query, params)
                    self.explain_seconds += clock() - started
            started = clock()
            try:
                return original(query, params, log_exceptions)
            finally:
                entry["calls"] += 1
                entry["durations"].append(clock() - started)
                entry["seconds"] += entry["durations"][-1]

        self.cr.execute = execute
        try:
            yield self
        finally:
            del self.cr.execute

    def _explain(self, execute, query, params):
        from odoo.tools import SQL

        options = "ANALYZE, BUFFERS, " if self.analyze else ""

        def run(fmt):
            # each EXPLAIN in a savepoint rolled back: EXPLAIN ANALYZE of an UPDATE changes nothing
            execute("SAVEPOINT bench_scale_explain")
            try:
                prefix = f"EXPLAIN ({options}FORMAT {fmt}) "
                if isinstance(query, SQL):
                    execute(SQL(prefix + "%s", query))
                else:
                    execute(prefix + query, params)
                return self.cr.fetchall()
            finally:
                execute("ROLLBACK TO SAVEPOINT bench_scale_explain")

        try:
            plan = run("JSON")[0][0][0]["Plan"]
            text = "\n".join(row[0] for row in run("TEXT"))
        except Exception as error:  # a query EXPLAIN cannot take: noted, the call goes on
            return None, f"(no plan: {error})"
        return plan, text

    def planned(self):
        return [entry for entry in self.seen.values() if entry["plan"]]

    def problems(self):
        found = [(entry, problem) for entry in self.planned() for problem in plan_problems(entry["plan"], self.sizes)]
        return found + [(entry, problem) for entry in self.planned() if (problem := growing_calls(entry))]

    def main(self):
        """The planned query that took the most time."""
        return max(self.planned(), key=lambda entry: entry["seconds"], default=None)


# ---------------------------------------------------------------------------------- seed


def parse_args():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=None, help="default: orders / 10")
    parser.add_argument(
        "--work-mem", default="default,64kB", help="comma-separated settings to run under ('default': the server's)"
    )
    parser.add_argument(
        "--statement-timeout", type=int, default=600, help="seconds after which a query is cancelled (0: never)"
    )
    parser.add_argument("--only", default="", help="comma-separated case names or groups a-f")
    parser.add_argument("--due-share", type=int, default=20, help="percent of the customers whose plans are due now")
    parser.add_argument("--keep", action="store_true", help="leave the seed in the database (a later run reuses it)")
    parser.add_argument("--explain", action="store_true", help="print the plan of each case's main query")
    args = parser.parse_args()
    args.customers = args.customers or max(args.orders // 10, 1)
    return args


def seed_signature(args):
    return f"v2:{args.orders}:{args.customers}:{args.due_share}:{datetime.date.today()}"


def bench_partners_sql():
    return f"(SELECT id FROM res_partner WHERE ref = '{BENCH_TAG}')"


def delete_order_chatter(cr):
    """The chatter of the bench's orders (the overdue job tracks each order it flips); their
    tracking values go with them (ON DELETE CASCADE)."""
    cr.execute(
        f"""
        CREATE TEMP TABLE bench_messages ON COMMIT DROP AS
        SELECT id FROM mail_message
         WHERE model = 'payment.order'
           AND res_id IN (SELECT id FROM payment_order WHERE partner_id IN {bench_partners_sql()})
        """
    )
    # nothing else points to these notes: the foreign keys' checks are skipped (replica role; the
    # bench's database user is a superuser), as some tables referencing mail_message (its own
    # parent_id among them) have no index there: checking them costs a scan per deleted message
    cr.execute("DELETE FROM mail_tracking_value WHERE mail_message_id IN (SELECT id FROM bench_messages)")
    cr.execute("SET LOCAL session_replication_role = replica")
    cr.execute("DELETE FROM mail_message WHERE id IN (SELECT id FROM bench_messages)")
    cr.execute("SET LOCAL session_replication_role = DEFAULT")
    cr.execute("DROP TABLE bench_messages")


def seed(env, args):
    """Customers, orders, lines, plans, templates and the communication log, with set-based SQL."""
    cr = env.cr
    company = env.company
    started = clock()
    cr.execute(
        """
        INSERT INTO res_partner (name, complete_name, active, is_company, type, company_id, autopost_bills,
                                 create_date, write_date, ref, email, collection_email, collection_whatsapp,
                                 dunning_excluded)
        SELECT 'Scale customer ' || g, 'Scale customer ' || g, true, true, 'contact', %s, 'ask', now(), now(), %s,
               'customer' || g || '@example.com',
               CASE WHEN g %% 10 != 0 THEN 'billing' || g || '@example.com' END,
               CASE WHEN g %% 2 = 0 THEN '+5199' || lpad(g::text, 7, '0') END,
               g %% 100 = 0
          FROM generate_series(1, %s) g
        RETURNING id
        """,
        (company.id, BENCH_TAG, args.customers),
    )
    partner_ids = [row[0] for row in cr.fetchall()]
    # each insert below reads the rows above: their statistics first (a planner that expects one
    # customer joins a million orders to them with a nested loop)
    cr.execute("ANALYZE res_partner")
    # due from 120 days ago to 29 days ahead; h, a hash of the row number, draws the rest
    # independently: older orders mostly paid, some paid in part, a few cancelled, the open ones
    # past due overdue
    cr.execute(
        """
        INSERT INTO payment_order (name, partner_id, company_id, currency_id, concept, amount, charges_amount,
                                   amount_total, balance, due_date, state, paid_date, installment, origin,
                                   payment_code, create_date, write_date, create_uid, write_uid)
        SELECT 'SCALE/' || g, (%(partners)s)[1 + g %% %(ncust)s], %(company)s, %(currency)s, 'Monthly service',
               100, charges, 100 + charges,
               CASE WHEN state = 'paid' THEN 0 WHEN h %% 11 = 0 THEN 40 ELSE 100 + charges END,
               due, state, CASE WHEN state = 'paid' THEN due END, 1,
               (ARRAY['manual', 'plan', 'import'])[1 + h %% 3], 'SC-' || g, now(), now(), 1, 1
          FROM generate_series(1, %(orders)s) g
         CROSS JOIN LATERAL (SELECT (hashint4(g) & 2147483647) %% 1000 AS h) r
         CROSS JOIN LATERAL (SELECT CURRENT_DATE + ((g::bigint * 7919) %% 150)::int - 120 AS due,
                                    CASE WHEN h %% 17 = 0 THEN 5 ELSE 0 END AS charges) d
         CROSS JOIN LATERAL (
               SELECT CASE WHEN h < 70 OR (h < 600 AND due < CURRENT_DATE - 30) THEN 'paid'
                           WHEN h >= 990 THEN 'cancelled'
                           WHEN due < CURRENT_DATE THEN 'overdue'
                           ELSE 'pending' END AS state) s
        """,
        {
            "partners": partner_ids,
            "ncust": len(partner_ids),
            "company": company.id,
            "currency": company.currency_id.id,
            "orders": args.orders,
        },
    )
    cr.execute("ANALYZE payment_order")
    cr.execute(
        f"""
        INSERT INTO payment_order_line (order_id, name, amount, sequence, company_id, currency_id,
                                        create_date, write_date, create_uid, write_uid)
        SELECT id, 'Monthly service', amount, 10, company_id, currency_id, now(), now(), 1, 1
          FROM payment_order WHERE partner_id IN {bench_partners_sql()}
        """
    )
    print(f"  customers, orders and lines: {clock() - started:.1f}s", flush=True)
    # plans: an Internet plan and a router in 4 installments, a share of the customers due now
    # (-2 to +3 days), the others later in the month; and a finished one-payment plan
    cr.execute(
        f"""
        INSERT INTO service_plan (name, sequence, active, partner_id, company_id, amount, payment_mode, installments,
                                  installments_billed, next_due_date, billing_day, period_months, state,
                                  billing_done, create_date, write_date, create_uid, write_uid)
        SELECT plan.name, plan.seq, true, p.id, p.company_id, plan.amount, plan.mode, plan.installments,
               plan.billed, due.day, extract(day FROM due.day), 1, plan.state, plan.done, now(), now(), 1, 1
          FROM (SELECT id, company_id, row_number() OVER (ORDER BY id) AS n
                  FROM res_partner WHERE id IN {bench_partners_sql()}) p
         CROSS JOIN (VALUES ('Internet 100 Mbps', 10, 89.9, 'recurring', 1, 0, 'active', false),
                            ('Router Wi-Fi 6', 20, 60.0, 'installments', 4, 0, 'to_collect', false),
                            ('Installation', 30, 120.0, 'single', 1, 1, 'paid', true))
                 AS plan(name, seq, amount, mode, installments, billed, state, done)
         CROSS JOIN LATERAL (
               SELECT CURRENT_DATE + CASE WHEN p.n %% 100 < %s THEN (p.n %% 6)::int - 2
                                          ELSE 4 + (p.n %% 27)::int END AS day) due
        """,
        (args.due_share,),
    )
    cr.execute("ANALYZE service_plan")
    cr.execute(
        f"CREATE TABLE {SNAPSHOT_TABLE} AS SELECT * FROM service_plan WHERE partner_id IN {bench_partners_sql()}"
    )
    templates = env["dunning.template"].create(
        [
            {"name": f"{BENCH_TAG} before", "auto_send": True, "days_from": -3, "days_to": 0, "interval_days": 1},
            {
                "name": f"{BENCH_TAG} first",
                "auto_send": True,
                "days_from": 1,
                "days_to": 30,
                "interval_days": 7,
                "channel_whatsapp": False,
            },
            {
                "name": f"{BENCH_TAG} digest",
                "auto_send": True,
                "days_from": 31,
                "open_end": True,
                "interval_days": 15,
                "send_mode": "customer",
            },
        ]
    )
    env.flush_all()
    # the log: 60% of the overdue orders had a message of their rule, 30% two, 10% three, one to
    # ten days apart; mostly sent, some failed or cancelled
    started = clock()
    cr.execute(
        f"""
        WITH src AS (
            SELECT o.id AS order_id, o.partner_id, o.company_id, k,
                   CASE WHEN o.due_date >= CURRENT_DATE - 30 THEN %(first)s ELSE %(digest)s END AS template_id,
                   CASE WHEN h < 50 THEN 'failed' WHEN h < 70 THEN 'cancelled' ELSE 'sent' END AS state,
                   CURRENT_DATE - (1 + h %% 10 + 10 * (k - 1))::int AS day
              FROM payment_order o
             CROSS JOIN LATERAL (SELECT (hashint4(o.id) & 2147483647) %% 1000 AS h) r
             CROSS JOIN generate_series(1, 3) k
             WHERE o.partner_id IN {bench_partners_sql()} AND o.state = 'overdue'
               AND h < (ARRAY[600, 300, 100])[k]
        ),
        inserted AS (
            INSERT INTO payment_order_notification (partner_id, company_id, template_id, channel, state, attempts,
                                                    recipient, run_date, sent_at, attempted_at, dedupe_key,
                                                    create_date, write_date, create_uid, write_uid)
            SELECT partner_id, company_id, template_id, 'email', state, 1, 'customer@example.com', day,
                   CASE WHEN state = 'sent' THEN day + time '09:00' END, day + time '09:00',
                   'seed:' || order_id || ':' || k, day + time '08:00', day + time '09:00', 1, 1
              FROM src
            RETURNING id, dedupe_key
        )
        INSERT INTO payment_order_notification_rel (notification_id, order_id)
        SELECT id, split_part(dedupe_key, ':', 2)::int FROM inserted
        """,
        {"first": templates[1].id, "digest": templates[2].id},
    )
    print(f"  communication log: {cr.rowcount} messages in {clock() - started:.1f}s", flush=True)
    for table in (
        "res_partner",
        "payment_order",
        "payment_order_line",
        "service_plan",
        "payment_order_notification",
        "payment_order_notification_rel",
    ):
        cr.execute(f"ANALYZE {table}")
    env["ir.config_parameter"].set_param(SEED_PARAM, seed_signature(args))
    cr.commit()
    return templates


def cleanup(env):
    cr = env.cr
    partners = bench_partners_sql()
    cr.execute(f"DELETE FROM payment_order_notification WHERE partner_id IN {partners}")
    delete_order_chatter(cr)
    cr.execute(f"DELETE FROM payment_order WHERE partner_id IN {partners}")
    cr.execute(f"DELETE FROM service_plan WHERE partner_id IN {partners}")
    cr.execute(
        "DELETE FROM payment_order_notification WHERE template_id IN "
        "(SELECT id FROM dunning_template WHERE name->>'en_US' LIKE %s)",
        (BENCH_TAG + "%",),
    )
    cr.execute("DELETE FROM dunning_template WHERE name->>'en_US' LIKE %s", (BENCH_TAG + "%",))
    cr.execute(f"DELETE FROM res_partner WHERE id IN {partners}")
    cr.execute(f"DROP TABLE IF EXISTS {SNAPSHOT_TABLE}")
    env["ir.config_parameter"].set_param(SEED_PARAM, False)
    cr.commit()
    env.invalidate_all()


def vacuum(env, *tables):
    """VACUUM ANALYZE (outside a transaction, on a connection of its own) after a reset."""
    import psycopg2

    from odoo.sql_db import connection_info_for

    _db, info = connection_info_for(env.cr.dbname)
    connection = psycopg2.connect(**info)
    try:
        connection.autocommit = True
        with connection.cursor() as cr:
            for table in tables:
                cr.execute(f"VACUUM ANALYZE {table}")
    finally:
        connection.close()


# ---------------------------------------------------------------------------------- cases


class Context:
    def __init__(self, env, args, templates):
        from odoo.addons.payment_dunning.tools import collection

        self.env = env
        self.args = args
        self.templates = templates
        self.companies = env["res.company"].search([])
        self.today = collection.company_days(self.companies)
        self.horizons = env["service.plan"]._generation_horizons(self.companies)
        self.batch_size = collection.batch_size(env)
        self.locked_partner_ids = []


def case_overdue(ctx):
    cr = ctx.env.cr
    # the orders past due are pending again, as on the morning before the job
    cr.execute(
        f"UPDATE payment_order SET state = 'pending' WHERE state = 'overdue' AND partner_id IN {bench_partners_sql()}"
    )
    # and their history of the rounds before is gone, as if the job had never run
    delete_order_chatter(cr)
    cr.execute("SELECT count(*) FROM payment_order WHERE state = 'pending' AND due_date < CURRENT_DATE")
    expected = cr.fetchone()[0]
    cr.commit()
    vacuum(ctx.env, "payment_order", "mail_message", "mail_tracking_value")
    ctx.env.invalidate_all()

    def run():
        count = ctx.env["payment.order"]._cron_mark_overdue()
        cr.commit()
        return count

    def check(count):
        return f"{count:,} orders marked overdue", count == expected, count

    return run, check, lambda: vacuum(ctx.env, "payment_order")


def case_eligible(ctx, template):
    from odoo.tools import SQL

    def run():
        ctx.env.cr.execute(
            SQL("SELECT count(*), count(DISTINCT partner_id) FROM (%s) AS e", template._eligible_sql(ctx.today))
        )
        return ctx.env.cr.fetchone()

    def check(result):
        return f"{result[0]:,} orders of {result[1]:,} customers eligible", True, tuple(result)

    return run, check, None


def case_collect(ctx):
    template = ctx.templates[2]

    def run():
        return template._collect_eligible(ctx.today)

    def check(partner_ids):
        return f"{len(partner_ids):,} customers ({template.name})", True, len(partner_ids)

    def after():
        ctx.env.cr.rollback()

    return run, check, after


def case_dunning_run(ctx):
    cr = ctx.env.cr

    def run():
        return ctx.env["dunning.template"]._dunning_run(commit=True)

    def check(queued):
        return f"{queued:,} messages queued", queued > 0, queued

    def after():
        cr.execute(
            "DELETE FROM payment_order_notification WHERE template_id = ANY(%s) AND dedupe_key LIKE 'dunning:%%'",
            (ctx.templates.ids,),
        )
        cr.commit()
        ctx.env.invalidate_all()
        vacuum(ctx.env, "payment_order_notification", "payment_order_notification_rel")

    return run, check, after


def case_due_plans(ctx):
    from odoo.tools import SQL

    def run():
        ctx.env.cr.execute(
            SQL(
                "SELECT count(*), count(DISTINCT p.partner_id) %s", ctx.env["service.plan"]._due_plans_sql(ctx.horizons)
            )
        )
        return ctx.env.cr.fetchone()

    def check(result):
        return f"{result[0]:,} plans of {result[1]:,} customers due", True, tuple(result)

    return run, check, None


def case_lock_partners(ctx):
    def run():
        return ctx.env["service.plan"].sudo()._lock_due_partners(ctx.horizons, ctx.batch_size, set())

    def check(partner_ids):
        ctx.locked_partner_ids = partner_ids
        return f"{len(partner_ids)} customers locked (batch of {ctx.batch_size})", bool(partner_ids), len(partner_ids)

    return run, check, ctx.env.cr.rollback


def case_lock_plans(ctx):
    def run():
        return ctx.env["service.plan"].sudo()._lock_due_plans(ctx.horizons, ctx.locked_partner_ids)

    def check(plans):
        return f"{len(plans)} plans locked", bool(plans) or not ctx.locked_partner_ids, len(plans)

    return run, check, ctx.env.cr.rollback


def case_generate(ctx):
    env, cr = ctx.env, ctx.env.cr
    params = env["ir.config_parameter"].sudo()
    notify = params.get_param("payment_dunning.notifications_enabled")
    params.set_param("payment_dunning.notifications_enabled", False)
    cr.commit()

    def run():
        return env["service.plan"]._generate_orders(ctx.companies, commit=True)

    def check(orders):
        return f"{len(orders):,} orders generated", bool(orders), len(orders)

    def after():
        cr.execute(
            f"DELETE FROM payment_order WHERE partner_id IN {bench_partners_sql()} AND name NOT LIKE %s", ("SCALE/%",)
        )
        cr.execute(
            f"""
            UPDATE service_plan p
               SET next_due_date = s.next_due_date, installments_billed = s.installments_billed,
                   billing_done = s.billing_done, state = s.state, generation_error = NULL,
                   generation_error_date = NULL
              FROM {SNAPSHOT_TABLE} s
             WHERE s.id = p.id
            """
        )
        params.set_param("payment_dunning.notifications_enabled", notify)
        cr.commit()
        env.invalidate_all()
        vacuum(env, "service_plan", "payment_order", "payment_order_line")

    return run, check, after


def case_aging(ctx):
    def run():
        return ctx.env["payment.dunning.aging"]._read_group(
            [("company_id", "in", ctx.companies.ids)], ["bucket"], ["__count", "balance:sum"]
        )

    def check(groups):
        return ", ".join(f"{bucket}: {count:,}" for bucket, count, _amount in groups), bool(groups), tuple(groups)

    return run, check, None


def case_dashboard(ctx):
    def run():
        return ctx.env["payment.order"].get_dashboard_data()

    def check(data):
        counts = {total["state"]: total["count"] for total in data["totals"]}
        text = (
            f"states {counts}, due this week {data['due_this_week']['count']:,}, messages {data['messages']['sent']:,}"
        )
        return text, True, (tuple(sorted(counts.items())), data["due_this_week"]["count"])

    return run, check, None


def case_state_totals(ctx):
    def run():
        return ctx.env["payment.order"].get_state_totals()

    def check(totals):
        counts = tuple((total["state"], total["count"]) for total in totals)
        return ", ".join(f"{state}: {count:,}" for state, count in counts), True, counts

    return run, check, None


def case_search(ctx, operator, value):
    orders = ctx.env["payment.order"]
    domain = [("notification_count", operator, value)]

    def run():
        page = orders.search(domain, limit=80)
        return len(page), orders.search_count(domain)

    def check(result):
        return f"page of {result[0]}, {result[1]:,} orders in all", True, result

    return run, check, None


def case_notification_stats(ctx):
    orders = ctx.env["payment.order"]
    page = orders.search([("state", "=", "overdue")], limit=80)
    page.invalidate_recordset(["notification_count", "last_notification_date"])

    def run():
        return sum(page.mapped("notification_count"))

    def check(total):
        return f"{total} messages on a page of {len(page)} orders", True, total

    return run, check, None


def build_cases(ctx):
    cases = [("overdue", "a", lambda: case_overdue(ctx))]
    cases += [
        (f"eligible:{template.name.removeprefix(BENCH_TAG + ' ')}", "b", lambda t=template: case_eligible(ctx, t))
        for template in ctx.templates
    ]
    cases += [
        ("collect", "b", lambda: case_collect(ctx)),
        ("dunning_run", "b", lambda: case_dunning_run(ctx)),
        ("due_plans", "c", lambda: case_due_plans(ctx)),
        ("lock_partners", "c", lambda: case_lock_partners(ctx)),
        ("lock_plans", "c", lambda: case_lock_plans(ctx)),
        ("generate", "c", lambda: case_generate(ctx)),
        ("aging", "d", lambda: case_aging(ctx)),
        ("dashboard", "e", lambda: case_dashboard(ctx)),
        ("state_totals", "e", lambda: case_state_totals(ctx)),
    ]
    cases += [
        (f"search:{operator}{value}", "f", lambda o=operator, v=value: case_search(ctx, o, v))
        for operator, value in SEARCHES
    ]
    cases.append(("notification_stats", "f", lambda: case_notification_stats(ctx)))
    return cases


def selected(name, group, only):
    if not only:
        return True
    return group in only or name in only or name.split(":")[0] in only


def set_work_mem(cr, setting):
    if setting == "default":
        cr.execute("RESET work_mem")
    else:
        cr.execute("SET work_mem = %s", (setting,))
    cr.commit()
    cr.execute("SHOW work_mem")
    return cr.fetchone()[0]


def run_case(ctx, name, make, explain):
    run, check, after = make()
    statements = Statements(ctx.env.cr)
    started = clock()
    cancelled = False
    with statements.recording():
        try:
            result = run()
        except psycopg2.errors.QueryCanceled:
            cancelled = True
    seconds = clock() - started - statements.explain_seconds
    if cancelled:
        ctx.env.cr.rollback()
        ctx.env.invalidate_all()
        summary, ok, value = f"cancelled after {seconds:.0f}s by statement_timeout", False, None
    else:
        summary, ok, value = check(result)
    if after:
        after()
    problems = statements.problems()
    main = statements.main()
    shape = plan_shape(main["plan"], statements.sizes) if main else "-"
    verdict = "QUADRATIC" if problems else "TIMEOUT" if cancelled else "linear"
    print(f"  {name:<20} {seconds:8.2f}s  {verdict:<9} {shape}")
    print(f"  {'':<20} {summary}{'' if ok else '  <-- UNEXPECTED'}")
    for entry in sorted(statements.seen.values(), key=lambda entry: -entry["seconds"])[:TOP_STATEMENTS]:
        if entry["seconds"] >= 0.05 * seconds:
            head = " ".join(entry["query"].split())[:90]
            print(f"  {'':<20} {entry['seconds']:7.2f}s in {entry['calls']:>5} call(s): {head}")
    for entry, problem in problems:
        print(f"    ! {problem}\n      in: {' '.join(entry['query'].split())[:300]}\n{indent(entry['text'])}")
    if explain and main:
        print(indent(main["text"]))
    return {"seconds": seconds, "shape": shape, "verdict": verdict, "ok": ok, "value": value}


def indent(text, prefix="      ", width=200):
    """``text`` indented, its lines cut at ``width`` (a plan's id lists run for pages)."""
    return "\n".join(prefix + (line if len(line) <= width else line[: width - 1] + "…") for line in text.splitlines())


def main():
    args = parse_args()
    only = {item.strip() for item in args.only.split(",") if item.strip()}
    settings = [item.strip() for item in args.work_mem.split(",") if item.strip()]
    registry = load_registry(args)
    results = {}
    with superuser_env(registry) as env:
        params = env["ir.config_parameter"].sudo()
        reuse = params.get_param(SEED_PARAM) == seed_signature(args)
        # the company day of the jobs and CURRENT_DATE of the seed must agree
        env.company.partner_id.tz = "UTC"
        saved_params = {key: params.get_param(key) for key in ("payment_dunning.days_before_due",)}
        params.set_param("payment_dunning.days_before_due", 3)
        others = env["dunning.template"].search([("auto_send", "=", True), ("name", "not like", BENCH_TAG)])
        others.auto_send = False
        env.cr.commit()
        try:
            if reuse:
                templates = env["dunning.template"].search([("name", "like", BENCH_TAG)], order="id")
                print(f"reusing the seed of {args.orders:,} orders for {args.customers:,} customers")
            else:
                cleanup(env)
                started = clock()
                print(f"seeding {args.orders:,} orders for {args.customers:,} customers", flush=True)
                templates = seed(env, args)
                print(f"seeded in {clock() - started:.1f}s", flush=True)
            ctx = Context(env, args, templates)
            cases = [(name, make) for name, group, make in build_cases(ctx) if selected(name, group, only)]
            # a quadratic query would run for hours at this size: it is cancelled, and fails
            env.cr.execute("SET statement_timeout = %s", (args.statement_timeout * 1000,))
            for setting in settings:
                shown = set_work_mem(env.cr, setting)
                print(f"\nwork_mem {shown} ({setting}):", flush=True)
                for name, make in cases:
                    results[name, setting] = run_case(ctx, name, make, args.explain)
                    sys.stdout.flush()
            set_work_mem(env.cr, "default")
        finally:
            env.cr.rollback()
            env.cr.execute("RESET statement_timeout")
            others.auto_send = True
            for key, value in saved_params.items():
                params.set_param(key, value)
            env.cr.commit()
            if not args.keep:
                started = clock()
                cleanup(env)
                print(f"\nseed deleted in {clock() - started:.1f}s")
    return report(results, settings, [name for name, _make in cases], args)


def report(results, settings, names, args):
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{args.orders:,} orders, {args.customers:,} customers:")
    print(f"| statement | {' | '.join(f'work_mem {setting}' for setting in settings)} | verdict |")
    print(f"|---|{'---|' * len(settings)}---|")
    failed = False
    for name in names:
        cells = [results[name, setting] for setting in settings]
        verdict = "linear" if all(cell["verdict"] == "linear" for cell in cells) else "QUADRATIC"
        same = len({repr(cell["value"]) for cell in cells}) == 1
        ok = all(cell["ok"] for cell in cells) and same
        if not same:
            verdict += ", results differ"
        failed |= verdict != "linear" or not ok
        figures = " | ".join("{:.2f}s {}".format(cell["seconds"], cell["shape"]) for cell in cells)
        print(f"| {name} | {figures} | {verdict} |")
    print(f"peak RSS: {peak_mb:.0f} MiB")
    if failed:
        print("FAILED: a plan is quadratic or a result is not what it should be")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
