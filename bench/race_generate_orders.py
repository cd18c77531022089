#!/usr/bin/env python3
"""Race proof: order generation survives a killed worker and two workers at the same moment.

Seeds committed customers with two plans each (some with two different due dates), then:

1. crash: a worker process bills in small committed batches and is killed with SIGKILL in the
   middle of its run;
2. race: two threads, each with its own database connection, start ``_generate_orders()`` behind
   a barrier and bill the rest.

Every plan must end with exactly one line, every customer with one order per due date, and the
orders the runs report must add up to the orders in the database. Exits non-zero otherwise.

    python3 bench/race_generate_orders.py -c .devenv/odoo.conf -d DB [--customers 4000]
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from bench_generate_orders import BENCH_TAG, cleanup, seed
from odoo_script import load_registry, script_arguments, superuser_env


def generate(env, batch_size):
    return env["service.plan"]._generate_orders(env["res.company"].search([]), commit=True, batch_size=batch_size)


def slow_worker(args):
    """Bill slowly, batch after committed batch, until the parent kills us."""
    registry = load_registry(args)
    from odoo.addons.payment_dunning.models.service_plan import ServicePlan

    original = ServicePlan._bill

    def slow_bill(self, horizons, todays=None):
        result = original(self, horizons, todays)
        time.sleep(0.05)
        return result

    ServicePlan._bill = slow_bill
    with superuser_env(registry) as env:
        generate(env, batch_size=20)
    return 0


def racer(registry, barrier, results, name):
    with superuser_env(registry) as env:
        barrier.wait()
        results[name] = len(generate(env, batch_size=50))


def bench_counts(env):
    env.cr.execute(
        """
        SELECT count(DISTINCT o.id), count(l.id), count(DISTINCT (o.partner_id, o.due_date)),
               count(DISTINCT l.plan_id)
          FROM payment_order o
          JOIN res_partner p ON p.id = o.partner_id
          JOIN payment_order_line l ON l.order_id = o.id
         WHERE p.ref = %s
        """,
        (BENCH_TAG,),
    )
    return dict(zip(("orders", "lines", "customer_due_dates", "plans_billed"), env.cr.fetchone(), strict=True))


def main():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=4_000)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return slow_worker(args)
    registry = load_registry(args)
    with superuser_env(registry) as env:
        from dateutil.relativedelta import relativedelta

        from odoo.addons.payment_dunning.models.payment_order import company_today

        cleanup(env)
        env["ir.config_parameter"].set_param("payment_dunning.days_before_due", 3)
        env["ir.config_parameter"].set_param("payment_dunning.notifications_enabled", False)
        generate(env, batch_size=200)  # demo or leftover plans out of the way
        env.cr.commit()
        today = company_today(env.company)
        seed(env, args.customers, today + relativedelta(days=3))
        # every third customer's router falls due a day earlier: two orders for that customer
        env.cr.execute(
            """
            UPDATE service_plan s SET next_due_date = next_due_date - 1
              FROM res_partner p
             WHERE p.id = s.partner_id AND p.ref = %s AND s.payment_mode = 'installments' AND p.id %% 3 = 0
            """,
            (BENCH_TAG,),
        )
        env.cr.execute(
            "SELECT count(*), count(DISTINCT (s.partner_id, s.next_due_date)) FROM service_plan s "
            "JOIN res_partner p ON p.id = s.partner_id WHERE p.ref = %s",
            (BENCH_TAG,),
        )
        plans, expected_orders = env.cr.fetchone()
        env.cr.commit()

    worker = subprocess.Popen([sys.executable, __file__, "--worker", "-c", args.config, "-d", args.database])
    try:
        with superuser_env(registry) as env:
            while bench_counts(env)["orders"] < expected_orders // 10 and worker.poll() is None:
                time.sleep(0.1)
                env.cr.rollback()
            before_kill = bench_counts(env)["orders"]
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    print(f"crash: worker killed after committing {before_kill} of {expected_orders} orders")

    barrier = threading.Barrier(2)
    results = {}
    threads = [threading.Thread(target=racer, args=(registry, barrier, results, name)) for name in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with superuser_env(registry) as env:
        counts = bench_counts(env)
        killed_batch_orders = counts["orders"] - sum(results.values())
        cleanup(env)
    print(f"race: workers billed {results}; database: {counts}; expected {expected_orders} orders for {plans} plans")
    ok = (
        len(results) == 2
        and counts["orders"] == counts["customer_due_dates"] == expected_orders
        and counts["lines"] == counts["plans_billed"] == plans
        and killed_batch_orders >= before_kill
        and 0 < before_kill < expected_orders
    )
    verdict = "OK, every plan billed once, one order per customer and due date" if ok else "FAILED"
    print("race generate-orders:", verdict)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
