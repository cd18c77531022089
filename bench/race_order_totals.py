#!/usr/bin/env python3
"""Race proof: the running totals (tools/order_summary.py) stay exact while orders change and two
workers compact them at the same moment.

Seeds committed orders, then for ``--seconds`` runs on their own database connections: two writers
(payments, overdue, due dates moved, orders deleted, some transactions rolled back), two workers of
the compaction job, and a reader that, in each of its snapshots, compares the totals with a GROUP BY
over the orders (what the panel, the dashboard and the aging report would show). Exits non-zero
when one comparison differs or a worker failed.

    python3 bench/race_order_totals.py -c .devenv/odoo.conf -d DB [--orders 10000] [--seconds 10]
"""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from bench_mark_overdue import BENCH_TAG, cleanup, seed
from odoo_script import load_registry, script_arguments, superuser_env

TOTALS = """
    SELECT company_id, currency_id, state, due_date, sum(order_count), sum(amount_total), sum(balance),
           sum(balance_count)
      FROM payment_order_summary GROUP BY 1, 2, 3, 4 HAVING sum(order_count) <> 0 ORDER BY 1, 2, 3, 4
"""
GROUPED = """
    SELECT company_id, currency_id, state, due_date, count(*), sum(amount_total), sum(balance),
           count(*) FILTER (WHERE balance > 0)
      FROM payment_order GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""
CHANGES = (
    # a payment of part of the balance
    "UPDATE payment_order SET balance = round(balance / 2, 2) WHERE id = ANY(%s) AND state IN ('pending', 'overdue')",
    # paid in full
    "UPDATE payment_order SET balance = 0, state = 'paid', paid_date = CURRENT_DATE "
    "WHERE id = ANY(%s) AND state IN ('pending', 'overdue')",
    # overdue
    "UPDATE payment_order SET state = 'overdue' WHERE id = ANY(%s) AND state = 'pending' AND due_date < CURRENT_DATE",
    # a new due date
    "UPDATE payment_order SET due_date = due_date + 7 WHERE id = ANY(%s)",
)
# one order in a while is deleted (not 20: the orders would be gone before the end)
DELETE = "DELETE FROM payment_order WHERE id = ANY(%s)"


def writer(registry, ids, deadline, stats, errors):
    from psycopg2.errors import DeadlockDetected, SerializationFailure

    while time.time() < deadline:
        with superuser_env(registry) as env:
            try:
                for _change in range(random.randint(1, 4)):
                    env.cr.execute(random.choice(CHANGES), (random.sample(ids, 20),))
                if random.random() < 0.1:
                    env.cr.execute(DELETE, (random.sample(ids, 1),))
                if random.random() < 0.2:
                    env.cr.rollback()
                    stats["rolled back"] += 1
                else:
                    env.cr.commit()
                    stats["committed"] += 1
            except (SerializationFailure, DeadlockDetected):
                env.cr.rollback()
                stats["conflicts"] += 1
            except Exception as error:  # any other failure fails the proof
                errors.append(f"writer: {error!r}")
                return


def compactor(registry, deadline, stats, errors):
    while time.time() < deadline:
        with superuser_env(registry) as env:
            try:
                env["payment.order"]._cron_compact_totals()
                stats["compactions"] += 1
            except Exception as error:
                errors.append(f"compaction: {error!r}")
                return
        time.sleep(random.random() / 10)


def reader(registry, deadline, stats, errors):
    while time.time() < deadline:
        with superuser_env(registry) as env:
            env.cr.execute(TOTALS)
            totals = env.cr.fetchall()
            env.cr.execute(GROUPED)
            grouped = env.cr.fetchall()
            stats["comparisons"] += 1
            if totals != grouped:
                errors.append(f"totals differ from the orders in one snapshot: {set(totals) ^ set(grouped)}")
                return
        time.sleep(0.05)


def main():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    registry = load_registry(args)
    with superuser_env(registry) as env:
        cleanup(env)
        env.cr.commit()
        seed(env, args.orders, max(args.orders // 10, 1))
        env.cr.execute("SELECT id FROM payment_order WHERE concept = %s ORDER BY id", (BENCH_TAG,))
        ids = [row[0] for row in env.cr.fetchall()]
    deadline = time.time() + args.seconds
    stats = {"committed": 0, "rolled back": 0, "conflicts": 0, "compactions": 0, "comparisons": 0}
    errors = []
    half = len(ids) // 2
    threads = [
        threading.Thread(target=writer, args=(registry, ids[:half], deadline, stats, errors)),
        threading.Thread(target=writer, args=(registry, ids[half // 2 :], deadline, stats, errors)),
        threading.Thread(target=compactor, args=(registry, deadline, stats, errors)),
        threading.Thread(target=compactor, args=(registry, deadline, stats, errors)),
        threading.Thread(target=reader, args=(registry, deadline, stats, errors)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with superuser_env(registry) as env:
        env["payment.order"]._cron_compact_totals()
        env.cr.execute(TOTALS)
        totals = env.cr.fetchall()
        env.cr.execute(GROUPED)
        final_ok = totals == env.cr.fetchall()
        env.cr.execute("SELECT count(*) FROM payment_order_summary")
        rows = env.cr.fetchone()[0]
        cleanup(env)
    print(f"{stats}; after the last compaction: {rows} rows for {len(totals)} keys")
    if not final_ok:
        errors.append("the totals differ from the orders at the end")
    if rows != len(totals):
        errors.append("the last compaction left more than one row per key")
    for error in errors[:5]:
        print("FAILED:", error)
    ok = not errors and stats["comparisons"] > 0 and stats["compactions"] > 1 and stats["committed"] > 0
    print("race order totals:", "OK, the totals matched the orders in every snapshot" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
