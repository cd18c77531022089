#!/usr/bin/env python3
"""Benchmark: ``payment.order._cron_mark_overdue()`` against plain SQL doing the same work.

Seeds N orders (default 200,000) with set-based SQL inserts into a database where payment_dunning
is installed, then alternately times the cron method and the raw SQL, resetting the rows to
``pending`` (and removing their history) between rounds, and prints both medians and their ratio
(target: within 1.5x). The job flips the orders and writes each one's chatter entry (a message and
its tracking value); the raw SQL is one statement doing just that: a plain UPDATE, then INSERTs of
rows as wide (the same columns, constant values). The plain UPDATE alone (what the job did before
it kept the history) is timed too, for the record.

    python3 bench/bench_mark_overdue.py -c .devenv/odoo.conf -d DB [--orders 200000] [--rounds 3]
        [--work-mem 64kB] [--explain] [--explain-analyze] [--vacuum] [--max-ratio 1.5]

``--work-mem`` sets work_mem on the session that runs both the job and the plain UPDATE (64kB is
PostgreSQL's minimum: a plan that only holds while a list fits in memory shows here). ``--explain``
prints the plan of the job's statement, taken just before it runs in the first round, and fails if
it has a SubPlan or a nested loop over a big relation (bench/bench_scale.py checks it);
``--explain-analyze`` adds EXPLAIN ANALYZE in a transaction that is rolled back. ``--vacuum`` clears
the dead rows of the rounds before each timed statement, as autovacuum does between two days' jobs
(at a million orders they would otherwise make each round slower than the last). Exit status 1 when
the ratio is above ``--max-ratio``, the plan is refused or the two mark a different number of orders.

It commits its data and deletes it at the end.
"""

import contextlib
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from bench_scale import Statements, has_subplan, indent, plan_problems, plan_shape, set_work_mem, vacuum
from odoo_script import load_registry, script_arguments, superuser_env

BENCH_TAG = "bench-mark-overdue"


def parse_args():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work-mem", default="default", help="work_mem of the session, e.g. 64kB (the minimum)")
    parser.add_argument("--explain", action="store_true", help="print and check the plan of the job's statement")
    parser.add_argument(
        "--explain-analyze", action="store_true", help="also EXPLAIN ANALYZE it, in a transaction rolled back"
    )
    parser.add_argument(
        "--vacuum", action="store_true", help="VACUUM ANALYZE the orders before each timed statement (not timed)"
    )
    parser.add_argument("--max-ratio", type=float, default=1.5, help="fail above this ratio job / plain UPDATE")
    return parser.parse_args()


def seed(env, orders, customers):
    cr = env.cr
    company = env.company
    cr.execute(
        """
        INSERT INTO res_partner (name, complete_name, active, is_company, type, company_id,
                                 autopost_bills, create_date, write_date, ref)
        SELECT 'Bench customer ' || g, 'Bench customer ' || g, true, true, 'contact', %s,
               'ask', now(), now(), %s
          FROM generate_series(1, %s) g
        RETURNING id
        """,
        (company.id, BENCH_TAG, customers),
    )
    partner_ids = [row[0] for row in cr.fetchall()]
    # Two thirds of the orders are past due, the rest due in the coming weeks; a few are closed.
    cr.execute(
        """
        INSERT INTO payment_order (name, partner_id, company_id, currency_id, concept, amount,
                                   charges_amount, amount_total, balance, due_date, state, installment,
                                   origin, payment_code, create_date, write_date,
                                   create_uid, write_uid)
        SELECT 'BENCH/' || g, (%(partners)s)[1 + g %% %(ncust)s], %(company)s, %(currency)s,
               %(tag)s, 100, 0, 100, 100,
               CURRENT_DATE + ((g %% 90) - 60),
               CASE WHEN g %% 50 = 0 THEN 'paid' WHEN g %% 77 = 0 THEN 'cancelled' ELSE 'pending' END,
               1, 'manual', %(tag)s || '-' || g, now(), now(), 1, 1
          FROM generate_series(1, %(orders)s) g
        """,
        {
            "partners": partner_ids,
            "ncust": len(partner_ids),
            "company": company.id,
            "currency": company.currency_id.id,
            "tag": BENCH_TAG,
            "orders": orders,
        },
    )
    cr.execute(
        """
        INSERT INTO payment_order_line (order_id, name, amount, sequence, company_id, currency_id)
        SELECT id, 'Monthly service', 100, 10, company_id, currency_id
          FROM payment_order WHERE concept = %s
        """,
        (BENCH_TAG,),
    )
    cr.execute("ANALYZE payment_order")
    cr.commit()


def delete_chatter(env):
    """The history the rounds wrote on the bench's orders (tracking values go with their messages)."""
    env.cr.execute(
        """
        CREATE TEMP TABLE bench_messages ON COMMIT DROP AS
        SELECT id FROM mail_message
         WHERE model = 'payment.order' AND res_id IN (SELECT id FROM payment_order WHERE concept = %s)
        """,
        (BENCH_TAG,),
    )
    delete_messages(env.cr)


def delete_messages(cr):
    """DELETE the messages listed in the temporary table ``bench_messages`` and their tracking
    values. Nothing else points to these notes; the foreign keys' checks are skipped (replica
    role, the bench's database user is a superuser), as some of the 20 tables that reference
    mail_message (its own parent_id among them) have no index there: checking them costs a scan
    per deleted message."""
    cr.execute("DELETE FROM mail_tracking_value WHERE mail_message_id IN (SELECT id FROM bench_messages)")
    cr.execute("SET LOCAL session_replication_role = replica")
    cr.execute("DELETE FROM mail_message WHERE id IN (SELECT id FROM bench_messages)")
    cr.execute("SET LOCAL session_replication_role = DEFAULT")
    cr.execute("DROP TABLE bench_messages")


def reset(env, clean=False):
    env.cr.execute(
        "UPDATE payment_order SET state = 'pending' WHERE concept = %s AND state = 'overdue'",
        (BENCH_TAG,),
    )
    delete_chatter(env)
    env.cr.commit()
    env.invalidate_all()
    if clean:
        # the dead rows of the rounds before, gone as autovacuum would between two days' jobs
        vacuum(env, "payment_order", "mail_message", "mail_tracking_value")


def time_cron(env, statements=None):
    """Seconds and orders marked; with ``statements``, the job's queries are planned just before
    they run (the planning time is not counted)."""
    start = time.perf_counter()
    with statements.recording() if statements else contextlib.nullcontext():
        count = env["payment.order"]._cron_mark_overdue()
    elapsed = time.perf_counter() - start - (statements.explain_seconds if statements else 0.0)
    env.cr.commit()
    return elapsed, count


def job_update(statements):
    """The planned UPDATE of the job."""
    updates = [entry for entry in statements.planned() if "UPDATE" in entry["query"].upper()]
    return max(updates, key=lambda entry: entry["seconds"], default=None)


def check_plan(statements, label):
    """Print the plan of the job's UPDATE; return what is wrong with it."""
    entry = job_update(statements)
    if entry is None:
        return ["the job sent no UPDATE that could be planned"]
    print(f"{label} (shape: {plan_shape(entry['plan'], statements.sizes)}):\n{indent(entry['text'])}")
    problems = plan_problems(entry["plan"], statements.sizes)
    if has_subplan(entry["plan"]):
        problems.append("the plan has a SubPlan (per-row once its list is expected not to fit in work_mem)")
    return problems


def explain_analyze(env):
    """EXPLAIN ANALYZE of the job's UPDATE, in a transaction rolled back (the rows stay pending)."""
    statements = Statements(env.cr, analyze=True)
    with statements.recording():
        env["payment.order"]._cron_mark_overdue()
    env.cr.rollback()
    env.invalidate_all()
    return check_plan(statements, "EXPLAIN ANALYZE of the job's UPDATE (rolled back)")


def time_raw_update(env, with_history=True):
    """The plain SQL of the job's work: the UPDATE, and (``with_history``) one message with its
    tracking value per flipped order, in the same statement."""
    update = """
        UPDATE payment_order
           SET state = 'overdue', write_date = (now() AT TIME ZONE 'UTC'), write_uid = 1
         WHERE state = 'pending' AND due_date < CURRENT_DATE
    """
    env.cr.execute("SELECT id FROM ir_model_fields WHERE model = 'payment.order' AND name = 'state'")
    field_id = env.cr.fetchone()[0]
    start = time.perf_counter()
    if with_history:
        env.cr.execute(
            f"""
            WITH flipped AS ({update} RETURNING id),
            messages AS (
                INSERT INTO mail_message (model, res_id, body, message_type, subtype_id, author_id, email_from,
                                          message_id, reply_to, is_internal, email_add_signature, date,
                                          create_uid, create_date, write_uid, write_date)
                SELECT 'payment.order', id, '', 'notification', 1, 2, '"OdooBot" <odoobot@example.com>',
                       '<0.0-openerp-message-notify@localhost>', '"OdooBot" <odoobot@example.com>', true, false,
                       now(), 1, now(), 1, now()
                  FROM flipped
                RETURNING id
            )
            INSERT INTO mail_tracking_value (field_id, old_value_char, new_value_char, mail_message_id,
                                             create_uid, create_date, write_uid, write_date)
            SELECT %s, 'Pending', 'Overdue', id, 1, now(), 1, now() FROM messages
            """,
            (field_id,),
        )
    else:
        env.cr.execute(update)
    count = env.cr.rowcount
    env.cr.commit()
    return time.perf_counter() - start, count


def cleanup(env):
    delete_chatter(env)
    env.cr.execute("DELETE FROM payment_order WHERE concept = %s", (BENCH_TAG,))
    env.cr.execute("DELETE FROM res_partner WHERE ref = %s", (BENCH_TAG,))
    env.cr.commit()


def main():
    args = parse_args()
    problems = []
    with superuser_env(load_registry(args)) as env:
        cleanup(env)
        # the company day of the cron and CURRENT_DATE of the raw query must agree
        env.company.partner_id.tz = "UTC"
        env.cr.commit()
        started = time.perf_counter()
        seed(env, args.orders, args.customers)
        print(f"seeded {args.orders} orders for {args.customers} customers in {time.perf_counter() - started:.1f}s")
        cron_times, raw_times, update_times = [], [], []
        try:
            # the session's work_mem holds for both, through their commits
            print(f"work_mem: {set_work_mem(env.cr, args.work_mem)}")
            if args.explain_analyze:
                reset(env)
                problems += explain_analyze(env)
            for round_ in range(args.rounds):
                reset(env, args.vacuum)
                statements = Statements(env.cr) if args.explain and round_ == 0 else None
                elapsed, cron_count = time_cron(env, statements)
                cron_times.append(elapsed)
                if statements:
                    problems += check_plan(statements, "EXPLAIN of the job's UPDATE")
                reset(env, args.vacuum)
                elapsed, raw_count = time_raw_update(env)
                raw_times.append(elapsed)
                if cron_count != raw_count:
                    print(f"MISMATCH: cron marked {cron_count}, raw SQL {raw_count}")
                    return 1
                reset(env, args.vacuum)
                elapsed, _count = time_raw_update(env, with_history=False)
                update_times.append(elapsed)
        finally:
            env.cr.rollback()
            set_work_mem(env.cr, "default")
            cleanup(env)
    cron, raw = statistics.median(cron_times), statistics.median(raw_times)
    ratio = cron / raw
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"orders marked overdue per run: {cron_count}")
    print(f"_cron_mark_overdue: {cron:.3f}s (median of {args.rounds})")
    print(f"raw SQL, same work: {raw:.3f}s (median of {args.rounds})")
    print(f"raw UPDATE alone:   {statistics.median(update_times):.3f}s (median of {args.rounds}, no history)")
    print(f"ratio cron/raw:     {ratio:.2f}x (target <= {args.max_ratio}x)")
    print(f"peak RSS:           {peak_mb:.0f} MiB")
    if ratio > args.max_ratio:
        problems.append(f"ratio {ratio:.2f}x above {args.max_ratio}x")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
