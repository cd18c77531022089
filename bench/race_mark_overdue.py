#!/usr/bin/env python3
"""Race proof: two workers run ``_cron_mark_overdue()`` on one database at the same moment.

Seeds committed orders, starts two threads with their own database connection behind a barrier,
and checks that every past-due order ends overdue exactly once: the counts the two runs report
add up to the number of eligible orders, nothing else changed, and a worker that lost the race
either skipped the rows or failed with a serialization error that a retry (as the next cron
call does) resolves. Exits non-zero when the proof fails.

    python3 bench/race_mark_overdue.py -c .devenv/odoo.conf -d DB [--orders 20000]
"""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from bench_mark_overdue import BENCH_TAG, cleanup, seed
from odoo_script import load_registry, script_arguments, superuser_env


def worker(registry, barrier, results, name):
    from psycopg2.errors import SerializationFailure

    attempts = 0
    marked = 0
    while attempts < 5:
        attempts += 1
        with superuser_env(registry) as env:
            if attempts == 1:
                barrier.wait()
            try:
                marked += env["payment.order"]._cron_mark_overdue()
                env.cr.commit()
                break
            except SerializationFailure:
                env.cr.rollback()
    results[name] = {"marked": marked, "attempts": attempts}


def main():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    args = parser.parse_args()
    registry = load_registry(args)
    with superuser_env(registry) as env:
        cleanup(env)
        env.company.partner_id.tz = "UTC"
        env["payment.order"]._cron_mark_overdue()  # demo or leftover orders out of the way
        env.cr.commit()
        seed(env, args.orders, max(args.orders // 10, 1))
        env.cr.execute(
            "SELECT count(*) FROM payment_order WHERE concept = %s AND state = 'pending' AND due_date < CURRENT_DATE",
            (BENCH_TAG,),
        )
        eligible = env.cr.fetchone()[0]
    barrier = threading.Barrier(2)
    results = {}
    threads = [threading.Thread(target=worker, args=(registry, barrier, results, name)) for name in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with superuser_env(registry) as env:
        env.cr.execute(
            "SELECT state, count(*) FROM payment_order WHERE concept = %s GROUP BY state",
            (BENCH_TAG,),
        )
        states = dict(env.cr.fetchall())
        cleanup(env)
    total_marked = sum(result["marked"] for result in results.values())
    print(f"eligible orders: {eligible}; workers: {results}; states after: {states}")
    ok = total_marked == eligible == states.get("overdue", 0) and len(results) == 2
    print("race mark-overdue:", "OK, every order marked once" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
