#!/usr/bin/env python3
"""Benchmark: the dunning run (eligibility and queueing) against a plain SQL query of the eligible set.

Seeds N orders (default 500,000) over C customers (default 50,000) with set-based SQL, due from
120 days ago to 30 days ahead, and three automatic templates: before the due date (-3..0, daily,
email and WhatsApp), first dunning (1..30, weekly, email) and a digest per customer (31 and
later, every 15 days, email and WhatsApp). Times a plain SELECT of the orders the three templates
select, then ``_dunning_run()`` (which decides the same set and queues its messages), and prints
orders evaluated per second, messages queued, peak memory and the ratio (target: within 3x).

    python3 bench/bench_dunning_run.py -c .devenv/odoo.conf -d DB [--orders 500000] [--customers 50000]

It commits its data and deletes it at the end.
"""

import datetime
import os
import resource
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from odoo_script import load_registry, script_arguments, superuser_env

BENCH_TAG = "bench-dunning-run"


def clock():
    """Wall-clock seconds that freezegun, which sets the day of the runs, does not stop."""
    return os.times().elapsed


def parse_args():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument(
        "--weekly-cap",
        type=int,
        default=0,
        help="automatic messages per customer and channel in 7 days (0: none, so that the run messages every "
        "order the query selects)",
    )
    return parser.parse_args()


def seed(env, orders, customers):
    cr = env.cr
    company = env.company
    cr.execute(
        """
        INSERT INTO res_partner (name, complete_name, active, is_company, type, company_id, autopost_bills,
                                 create_date, write_date, ref, collection_email, collection_whatsapp)
        SELECT 'Bench customer ' || g, 'Bench customer ' || g, true, true, 'contact', %s, 'ask', now(), now(), %s,
               'customer' || g || '@example.com', CASE WHEN g %% 2 = 0 THEN '+5199' || lpad(g::text, 7, '0') END
          FROM generate_series(1, %s) g
        RETURNING id
        """,
        (company.id, BENCH_TAG, customers),
    )
    partner_ids = [row[0] for row in cr.fetchall()]
    cr.execute(
        """
        INSERT INTO payment_order (name, partner_id, company_id, currency_id, concept, amount, charges_amount,
                                   amount_total, balance, due_date, state, installment, origin,
                                   create_date, write_date, create_uid, write_uid)
        SELECT 'BENCH/' || g, (%(partners)s)[1 + g %% %(ncust)s], %(company)s, %(currency)s, %(tag)s,
               100, 0, 100, CASE WHEN g %% 50 = 0 THEN 0 ELSE 100 END,
               CURRENT_DATE + ((g %% 151) - 120),
               CASE WHEN g %% 50 = 0 THEN 'paid' WHEN g %% 151 < 120 THEN 'overdue' ELSE 'pending' END,
               1, 'manual', now(), now(), 1, 1
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
    cr.execute("ANALYZE payment_order")
    cr.execute("ANALYZE res_partner")
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
    cr.commit()
    return templates


def cleanup(env):
    cr = env.cr
    cr.execute("DELETE FROM payment_order_notification WHERE template_id IN "
               "(SELECT id FROM dunning_template WHERE name->>'en_US' LIKE %s)", (BENCH_TAG + "%",))  # fmt: skip
    cr.execute("DELETE FROM dunning_template WHERE name->>'en_US' LIKE %s", (BENCH_TAG + "%",))
    cr.execute("DELETE FROM payment_order WHERE concept = %s", (BENCH_TAG,))
    cr.execute("DELETE FROM res_partner WHERE ref = %s", (BENCH_TAG,))
    cr.commit()


def time_plain_query(env, templates):
    from odoo.addons.payment_dunning.models.payment_order import company_today
    from odoo.tools import SQL

    today = {company.id: company_today(company) for company in env["res.company"].search([])}
    query = SQL(" UNION ALL ").join(SQL("(%s)", template._eligible_sql(today)) for template in templates)
    start = clock()
    env.cr.execute(SQL("SELECT order_id, partner_id FROM (%s) AS eligible", query))
    rows = env.cr.fetchall()
    elapsed = clock() - start
    return elapsed, len(rows), len({order_id for order_id, _partner in rows})


def measure_day(env, templates, day):
    """(query seconds, eligible pairs, eligible orders, run seconds, messages queued) on ``day``."""
    from freezegun import freeze_time

    with freeze_time(f"{day} 12:00:00"):
        query_seconds, pairs, orders = time_plain_query(env, templates)
        env.cr.rollback()
        start = clock()
        queued = env["dunning.template"]._dunning_run(commit=True)
        run_seconds = clock() - start
    return query_seconds, pairs, orders, run_seconds, queued


def main():
    args = parse_args()
    with superuser_env(load_registry(args)) as env:
        cleanup(env)
        # the day of the run and CURRENT_DATE of the seeding must agree
        env.company.partner_id.tz = "UTC"
        env["dunning.template"].search([("auto_send", "=", True)]).auto_send = False
        env["ir.config_parameter"].set_param("payment_dunning.weekly_cap", args.weekly_cap)
        started = clock()
        templates = seed(env, args.orders, args.customers)
        print(f"seeded {args.orders} orders for {args.customers} customers in {clock() - started:.1f}s")
        try:
            today = datetime.date.today()
            first = measure_day(env, templates, today)
            env.cr.execute(
                "SELECT count(DISTINCT r.order_id) FROM payment_order_notification_rel r "
                "JOIN payment_order_notification n ON n.id = r.notification_id WHERE n.template_id = ANY(%s)",
                (templates.ids,),
            )
            messaged_orders = env.cr.fetchone()[0]
            again = env["dunning.template"]._dunning_run(commit=True)
            rss_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            next_day = measure_day(env, templates, today + datetime.timedelta(days=1))
        finally:
            cleanup(env)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for label, (query_seconds, pairs, _orders, run_seconds, queued) in (
        ("first run (nothing sent before)", first),
        ("next day (intervals running)", next_day),
    ):
        print(f"{label}:")
        print(f"  plain SQL query of the eligible set: {query_seconds:.2f}s ({pairs} order-template pairs fetched)")
        rate = args.orders / run_seconds
        print(f"  _dunning_run: {run_seconds:.2f}s, {rate:.0f} orders evaluated/s, {queued} messages queued")
        print(f"  ratio run/query: {run_seconds / query_seconds:.2f}x (target <= 3x)")
    print(f"second run the same day queued {again} messages")
    print(f"peak RSS: {rss_first:.0f} MiB after the first run, {peak_mb:.0f} MiB at the end")
    ok = (messaged_orders == first[2] or args.weekly_cap) and again == 0
    if not ok:
        print(f"MISMATCH: the run messaged {messaged_orders} orders, the query selects {first[2]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
