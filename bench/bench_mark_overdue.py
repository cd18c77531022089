#!/usr/bin/env python3
"""Benchmark: ``payment.order._cron_mark_overdue()`` against a plain SQL UPDATE of the same rows.

Seeds N orders (default 200,000) with set-based SQL inserts into a database where payment_dunning
is installed, then alternately times the cron method and the raw UPDATE, resetting the rows to
``pending`` between rounds, and prints both medians and their ratio (target: within 1.5x).

    python3 bench/bench_mark_overdue.py -c .devenv/odoo.conf -d DB [--orders 200000] [--rounds 3]

It commits its data and deletes it at the end.
"""

import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from odoo_script import load_registry, script_arguments, superuser_env

BENCH_TAG = "bench-mark-overdue"


def parse_args():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
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


def reset(env):
    env.cr.execute(
        "UPDATE payment_order SET state = 'pending' WHERE concept = %s AND state = 'overdue'",
        (BENCH_TAG,),
    )
    env.cr.commit()
    env.invalidate_all()


def time_cron(env):
    start = time.perf_counter()
    count = env["payment.order"]._cron_mark_overdue()
    env.cr.commit()
    return time.perf_counter() - start, count


def time_raw_update(env):
    start = time.perf_counter()
    env.cr.execute(
        """
        UPDATE payment_order
           SET state = 'overdue', write_date = (now() AT TIME ZONE 'UTC'), write_uid = 1
         WHERE state = 'pending' AND due_date < CURRENT_DATE
        """
    )
    count = env.cr.rowcount
    env.cr.commit()
    return time.perf_counter() - start, count


def cleanup(env):
    env.cr.execute("DELETE FROM payment_order WHERE concept = %s", (BENCH_TAG,))
    env.cr.execute("DELETE FROM res_partner WHERE ref = %s", (BENCH_TAG,))
    env.cr.commit()


def main():
    args = parse_args()
    with superuser_env(load_registry(args)) as env:
        cleanup(env)
        # the company day of the cron and CURRENT_DATE of the raw query must agree
        env.company.partner_id.tz = "UTC"
        env.cr.commit()
        started = time.perf_counter()
        seed(env, args.orders, args.customers)
        print(f"seeded {args.orders} orders for {args.customers} customers in {time.perf_counter() - started:.1f}s")
        cron_times, raw_times = [], []
        try:
            for _round in range(args.rounds):
                reset(env)
                elapsed, cron_count = time_cron(env)
                cron_times.append(elapsed)
                reset(env)
                elapsed, raw_count = time_raw_update(env)
                raw_times.append(elapsed)
                if cron_count != raw_count:
                    print(f"MISMATCH: cron marked {cron_count}, raw UPDATE {raw_count}")
                    return 1
        finally:
            cleanup(env)
    cron, raw = statistics.median(cron_times), statistics.median(raw_times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"orders marked overdue per run: {cron_count}")
    print(f"_cron_mark_overdue: {cron:.3f}s (median of {args.rounds})")
    print(f"raw SQL UPDATE:     {raw:.3f}s (median of {args.rounds})")
    print(f"ratio cron/raw:     {cron / raw:.2f}x (target <= 1.5x)")
    print(f"peak RSS:           {peak_mb:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
