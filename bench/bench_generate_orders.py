#!/usr/bin/env python3
"""Benchmark: ``service.plan._generate_orders()`` against a naive loop of one ``create()`` per order.

Seeds N customers (default 50,000) with two plans each (an Internet plan and a router in
installments), all due in 3 days, with set-based SQL inserts; times the generation as the
scheduled job runs it (batches committed) and prints orders per second and peak memory. Then, on
a sample of the same customers, times the naive way: one ``payment.order.create()`` per customer,
with the default context, and prints the ratio of the two rates (targets: at least 1,000 orders/s
and at least 10x the naive loop).

    python3 bench/bench_generate_orders.py -c .devenv/odoo.conf -d DB [--customers 50000] [--sample 1000]

It commits its data and deletes it at the end.
"""

import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from odoo_script import load_registry, script_arguments, superuser_env

BENCH_TAG = "bench-generate-orders"


def parse_args():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--sample", type=int, default=1_000, help="customers billed by the naive loop")
    parser.add_argument("--batch-size", type=int, default=None, help="customers per committed batch")
    return parser.parse_args()


def seed(env, customers, due_date):
    """``customers`` customers with an Internet plan and a router in 4 installments, due on ``due_date``."""
    cr = env.cr
    company = env.company
    cr.execute(
        """
        INSERT INTO res_partner (name, complete_name, active, is_company, type, company_id,
                                 autopost_bills, create_date, write_date, ref)
        SELECT 'Bench customer ' || g, 'Bench customer ' || g, true, true, 'contact', %s,
               'ask', now(), now(), %s
          FROM generate_series(1, %s) g
        """,
        (company.id, BENCH_TAG, customers),
    )
    cr.execute(
        """
        INSERT INTO service_plan (name, sequence, active, partner_id, company_id, amount, total_amount, payment_mode,
                                  installments, installments_billed, next_due_date, billing_day,
                                  period_months, state, billing_done, create_date, write_date,
                                  create_uid, write_uid)
        SELECT plan.name, plan.seq, true, p.id, p.company_id, plan.amount, plan.total, plan.mode, plan.installments, 0,
               %(due)s, %(day)s, 1, plan.state, false, now(), now(), 1, 1
          FROM res_partner p
         CROSS JOIN (VALUES ('Internet 100 Mbps', 10, 89.9, NULL::numeric, 'recurring', 1, 'active'),
                            ('Router Wi-Fi 6', 20, 60.0, 240.0, 'installments', 4, 'to_collect'))
                 AS plan(name, seq, amount, total, mode, installments, state)
         WHERE p.ref = %(tag)s
        """,
        {"due": due_date, "day": due_date.day, "tag": BENCH_TAG},
    )
    cr.execute("ANALYZE res_partner")
    cr.execute("ANALYZE service_plan")
    cr.commit()


def cleanup(env):
    cr = env.cr
    cr.execute("SELECT id FROM res_partner WHERE ref = %s", (BENCH_TAG,))
    partner_ids = [row[0] for row in cr.fetchall()]
    if partner_ids:
        cr.execute("DELETE FROM payment_order WHERE partner_id = ANY(%s)", (partner_ids,))
        cr.execute("DELETE FROM service_plan WHERE partner_id = ANY(%s)", (partner_ids,))
        cr.execute("DELETE FROM res_partner WHERE id = ANY(%s)", (partner_ids,))
    cr.commit()


def naive_loop(env, sample, due):
    """What a straightforward implementation does: one order at a time, full ORM defaults."""
    from dateutil.relativedelta import relativedelta

    from odoo import Command

    plans = env["service.plan"].search([("partner_id.ref", "=", BENCH_TAG)], order="partner_id, id")
    by_partner = {}
    for plan in plans:
        by_partner.setdefault(plan.partner_id, []).append(plan)
    partners = list(by_partner)[-sample:]
    partner_ids = [partner.id for partner in partners]
    # bill the sample again, this time the naive way
    env.cr.execute("DELETE FROM payment_order WHERE partner_id = ANY(%s)", (partner_ids,))
    env.cr.execute(
        "UPDATE service_plan SET next_due_date = %s, installments_billed = 0 WHERE partner_id = ANY(%s)",
        (due, partner_ids),
    )
    env.cr.commit()
    env.invalidate_all()
    start = time.perf_counter()
    for partner in partners:
        partner_plans = by_partner[partner]
        env["payment.order"]._internal_edit().create(
            {
                "partner_id": partner.id,
                "due_date": partner_plans[0].next_due_date,
                "origin": "plan",
                "concept": ", ".join(plan.name for plan in partner_plans),
                "line_ids": [Command.create({"name": plan.name, "amount": plan.amount}) for plan in partner_plans],
            }
        )
        for plan in partner_plans:
            plan.next_due_date = plan.next_due_date + relativedelta(months=1)
    env.cr.commit()
    return len(partners), time.perf_counter() - start


def main():
    args = parse_args()
    with superuser_env(load_registry(args)) as env:
        from dateutil.relativedelta import relativedelta

        from odoo.addons.payment_dunning.models.payment_order import company_today

        cleanup(env)
        env["ir.config_parameter"].set_param("payment_dunning.days_before_due", 3)
        env["ir.config_parameter"].set_param("payment_dunning.notifications_enabled", False)
        env.cr.commit()
        due = company_today(env.company) + relativedelta(days=3)
        started = time.perf_counter()
        seed(env, args.customers, due)
        seconds = time.perf_counter() - started
        print(f"seeded {args.customers} customers with 2 plans each, due {due}, in {seconds:.1f}s")
        try:
            start = time.perf_counter()
            orders = env["service.plan"]._generate_orders(
                env["res.company"].search([]), commit=True, batch_size=args.batch_size
            )
            elapsed = time.perf_counter() - start
            generation_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            env.cr.execute(
                """
                SELECT count(*), count(DISTINCT o.id), count(DISTINCT o.partner_id)
                  FROM payment_order_line l
                  JOIN payment_order o ON o.id = l.order_id
                  JOIN res_partner p ON p.id = o.partner_id
                 WHERE p.ref = %s
                """,
                (BENCH_TAG,),
            )
            lines, bench_orders, billed_customers = env.cr.fetchone()
            naive_count, naive_elapsed = naive_loop(env, min(args.sample, args.customers), due)
        finally:
            cleanup(env)
    rate, naive_rate = len(orders) / elapsed, naive_count / naive_elapsed
    print(f"_generate_orders: {len(orders)} orders ({lines} lines) in {elapsed:.1f}s = {rate:.0f} orders/s")
    print(f"naive loop:       {naive_count} orders in {naive_elapsed:.1f}s = {naive_rate:.0f} orders/s")
    print(f"ratio:            {rate / naive_rate:.1f}x the naive loop (target >= 10x; >= 1000 orders/s)")
    print(f"peak RSS:         {generation_peak_mb:.0f} MiB after seeding and generating (whole script)")
    ok = bench_orders == billed_customers == args.customers and lines == 2 * args.customers
    if not ok:
        print(f"MISMATCH: expected {args.customers} orders with 2 lines each")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
