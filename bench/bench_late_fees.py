#!/usr/bin/env python3
"""Benchmark: the late-fee job against the plain UPDATE that would apply the same charges.

Seeds N open orders (default 200,000; most past due beyond the grace period, a few closed) with
set-based SQL, turns late fees on for the company (5 days of grace, a fee of 10, 3% a month, a cap
of 30%), and times ``payment.order.charge._apply_late_fees`` on the first day (fee and interest)
and on the next day (interest only: the daily run) against one plain UPDATE of payment_order
computing the same amounts inline (no charges history, no chatter). It prints both, the ratios
(target: the daily run within 3x; the first day, switching the fees on over a backlog, is
reported) and the plan of the job's statement, and checks that both add the same total.

    ./dev script bench/bench_late_fees.py --orders 1000000 [--max-ratio 3]

Exit status 1 when the daily run's ratio is above ``--max-ratio``, the plan has a SubPlan, or the
totals differ.
It commits its data on a fresh database (``./dev script`` drops it).
"""

import datetime
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from bench_mark_overdue import seed
from bench_scale import has_subplan, vacuum
from odoo_script import load_registry, script_arguments, superuser_env

TERMS = {"grace_days": 5, "fixed": 10.0, "monthly_rate": 3.0, "cap_percent": 30.0}


def parse_args():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-ratio", type=float, default=3.0)
    return parser.parse_args()


def mark_overdue(env):
    env.cr.execute("UPDATE payment_order SET state = 'overdue' WHERE state = 'pending' AND due_date < CURRENT_DATE")
    env.cr.commit()


def snapshot(env):
    env.cr.execute("DROP TABLE IF EXISTS bench_late_fee_orders")
    env.cr.execute(
        "CREATE TABLE bench_late_fee_orders AS SELECT id, charges_amount, amount_total, balance FROM payment_order"
    )
    env.cr.commit()


def reset(env):
    """The orders as seeded, and no charge nor chatter of the rounds."""
    env.cr.execute(
        """
        UPDATE payment_order o SET charges_amount = s.charges_amount, amount_total = s.amount_total,
                                   balance = s.balance, late_fee_applied = NULL, interest_until = NULL
          FROM bench_late_fee_orders s
         WHERE s.id = o.id AND (o.charges_amount IS DISTINCT FROM s.charges_amount OR o.late_fee_applied)
        """
    )
    env.cr.execute("TRUNCATE payment_order_charge")
    env.cr.execute(
        "CREATE TEMP TABLE bench_messages ON COMMIT DROP AS "
        "SELECT id FROM mail_message WHERE model = 'payment.order' AND message_type = 'notification'"
    )
    env.cr.execute("DELETE FROM mail_tracking_value WHERE mail_message_id IN (SELECT id FROM bench_messages)")
    env.cr.execute("SET LOCAL session_replication_role = replica")
    env.cr.execute("DELETE FROM mail_message WHERE id IN (SELECT id FROM bench_messages)")
    env.cr.execute("SET LOCAL session_replication_role = DEFAULT")
    env.cr.commit()
    vacuum(env, "payment_order", "payment_order_charge", "mail_message", "mail_tracking_value")


def total_charges(env):
    env.cr.execute("SELECT coalesce(sum(charges_amount), 0) FROM payment_order")
    return float(env.cr.fetchone()[0])


def time_job(env, day):
    from odoo.addons.payment_dunning.tools import collection

    charges = env["payment.order.charge"]
    original = collection.company_today
    collection.company_today = lambda company: day
    try:
        started = time.perf_counter()
        count = charges._apply_late_fees(env.company, TERMS)
        env.cr.commit()
        return time.perf_counter() - started, count
    finally:
        collection.company_today = original


def plain_update(env, day):
    """What the job adds, as one UPDATE computing it inline: an order not charged yet gets the fee and its
    interest since the grace period ended, the others a day of interest; up to the cap."""
    started = time.perf_counter()
    env.cr.execute(
        """
        UPDATE payment_order o
           SET charges_amount = o.charges_amount + x.added, amount_total = o.amount_total + x.added,
               balance = o.balance + x.added
          FROM (SELECT id, least(CASE WHEN charges_amount = 0 THEN 10 ELSE 0 END
                                 + round((balance - charges_amount) * 3.0 / 100 / 30
                                         * CASE WHEN charges_amount = 0 THEN %(day)s::date - (due_date + 6) + 1
                                                ELSE 1 END, 2),
                                 greatest(round(amount * 30.0 / 100, 2) - charges_amount, 0)) AS added
                  FROM payment_order
                 WHERE state IN ('pending', 'overdue') AND balance > 0 AND due_date < %(day)s::date - 5) x
         WHERE o.id = x.id AND x.added > 0
        """,
        {"day": day},
    )
    count = env.cr.rowcount
    env.cr.commit()
    return time.perf_counter() - started, count


def job_plan(env, day):
    from odoo.tools import SQL

    calc = env["payment.order.charge"]._late_fee_sql(env.company, TERMS, day, lock=True)
    env.cr.execute(SQL("EXPLAIN (FORMAT JSON) WITH %s SELECT * FROM charged", calc))
    plan = env.cr.fetchone()[0][0]["Plan"]
    env.cr.rollback()
    return plan


def node_types(node, found=None):
    found = found if found is not None else []
    found.append(node["Node Type"])
    for child in node.get("Plans", []):
        node_types(child, found)
    return found


def main():
    args = parse_args()
    registry = load_registry(args)
    problems = []
    with superuser_env(registry) as env:
        seed(env, args.orders, args.customers)
        mark_overdue(env)
        snapshot(env)
        today = datetime.date.today()
        first_day, next_day = today, today + datetime.timedelta(days=1)
        plan = job_plan(env, first_day)
        print(f"plan of the job's selection: {' > '.join(dict.fromkeys(node_types(plan)))}")
        if has_subplan(plan):
            problems.append("the job's statement has a SubPlan")
        results = {"job first day": [], "job next day": [], "plain first day": [], "plain next day": []}
        totals = {}
        for _round in range(args.rounds):
            reset(env)
            seconds, count = time_job(env, first_day)
            results["job first day"].append(seconds)
            seconds, _count = time_job(env, next_day)
            results["job next day"].append(seconds)
            totals["job"] = total_charges(env)
            reset(env)
            seconds, plain_count = plain_update(env, first_day)
            results["plain first day"].append(seconds)
            seconds, _count = plain_update(env, next_day)
            results["plain next day"].append(seconds)
            totals["plain"] = total_charges(env)
        reset(env)
        medians = {name: statistics.median(values) for name, values in results.items()}
        print(f"{args.orders} orders, {count} charged by the job, {plain_count} by the plain UPDATE")
        for name, value in medians.items():
            print(f"  {name:16} {value:7.2f}s")
        # the daily run is the job's work; the first day (switching it on over a backlog, every late order
        # getting its fee, its first interest and a chatter entry at once) is reported, not limited
        for day, limit in (("first day", None), ("next day", args.max_ratio)):
            ratio = medians[f"job {day}"] / medians[f"plain {day}"]
            print(f"  ratio {day}: {ratio:.2f}x" + (f" (limit {limit}x)" if limit else " (switching on: no limit)"))
            if limit and ratio > limit:
                problems.append(f"the job is {ratio:.2f}x the plain UPDATE on the {day}")
        print(f"  charges added: job {totals['job']:.2f}, plain UPDATE {totals['plain']:.2f}")
        if abs(totals["job"] - totals["plain"]) > 0.005 * max(totals["plain"], 1):
            problems.append("the job and the plain UPDATE do not add the same charges")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
