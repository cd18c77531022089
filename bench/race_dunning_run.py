#!/usr/bin/env python3
"""Race proof: two workers run the dunning run on one database at the same moment.

Seeds committed orders, customers and three automatic templates (as bench_dunning_run.py does),
starts two threads with their own database connection behind a barrier, each running
``_dunning_run()`` with commits, and checks that every eligible order got its messages, that no
order received the same template by the same channel twice, that the counts the workers report
add up to the queue, and that a third run queues nothing. It runs twice: without a weekly cap
(every eligible order messaged) and with a cap of 3 (no customer gets more than 3 automatic
messages by one channel, however the two workers interleave). Exits non-zero when the proof fails.

    python3 bench/race_dunning_run.py -c .devenv/odoo.conf -d DB [--orders 40000] [--customers 4000]
"""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from bench_dunning_run import cleanup, seed, time_plain_query
from odoo_script import load_registry, script_arguments, superuser_env


def worker(registry, barrier, results, name):
    with superuser_env(registry) as env:
        barrier.wait()
        results[name] = env["dunning.template"]._dunning_run(commit=True, chunk_size=300)


def over_cap(env, templates, cap):
    """Customers and channels with more than ``cap`` distinct automatic messages queued."""
    env.cr.execute(
        """
        SELECT count(*) FROM (
            SELECT partner_id, channel FROM payment_order_notification
             WHERE template_id = ANY(%s)
             GROUP BY partner_id, channel
            HAVING count(DISTINCT array_to_string((string_to_array(dedupe_key, ':'))[1:5], ':')) > %s) AS over
        """,
        (templates.ids, cap),
    )
    return env.cr.fetchone()[0]


def race(registry, orders, customers, cap):
    with superuser_env(registry) as env:
        cleanup(env)
        env.company.partner_id.tz = "UTC"
        env["dunning.template"].search([("auto_send", "=", True)]).auto_send = False
        env["ir.config_parameter"].set_param("payment_dunning.weekly_cap", cap)
        templates = seed(env, orders, customers)
        _seconds, _pairs, eligible_orders = time_plain_query(env, templates)
        env.cr.commit()
    barrier = threading.Barrier(2)
    results = {}
    threads = [threading.Thread(target=worker, args=(registry, barrier, results, name)) for name in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with superuser_env(registry) as env:
        try:
            env.cr.execute(
                "SELECT count(*) FROM payment_order_notification WHERE template_id = ANY(%s)", (templates.ids,)
            )
            in_queue = env.cr.fetchone()[0]
            env.cr.execute(
                """
                SELECT count(*) FROM (
                    SELECT n.template_id, r.order_id, n.channel
                      FROM payment_order_notification n
                      JOIN payment_order_notification_rel r ON r.notification_id = n.id
                     WHERE n.template_id = ANY(%s)
                     GROUP BY 1, 2, 3 HAVING count(*) > 1) AS twice
                """,
                (templates.ids,),
            )
            duplicates = env.cr.fetchone()[0]
            env.cr.execute(
                "SELECT count(DISTINCT r.order_id) FROM payment_order_notification_rel r "
                "JOIN payment_order_notification n ON n.id = r.notification_id WHERE n.template_id = ANY(%s)",
                (templates.ids,),
            )
            messaged_orders = env.cr.fetchone()[0]
            over = over_cap(env, templates, cap) if cap else 0
            third = env["dunning.template"]._dunning_run(commit=True)
        finally:
            cleanup(env)
    print(
        f"weekly cap {cap or 'none'}: workers queued {results}; queue holds {in_queue}; orders messaged "
        f"{messaged_orders} of {eligible_orders} eligible; duplicates {duplicates}; customers over the cap {over}; "
        f"a third run queued {third}"
    )
    return (
        len(results) == 2
        and sum(results.values()) == in_queue
        and (messaged_orders == eligible_orders if not cap else 0 < messaged_orders <= eligible_orders)
        and duplicates == 0
        and over == 0
        and third == 0
    )


def main():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=40_000)
    parser.add_argument("--customers", type=int, default=4_000)
    args = parser.parse_args()
    registry = load_registry(args)
    # the cap's round is smaller: it proves the interleaving, not the volume (CI's time budget)
    ok = all(
        [
            race(registry, args.orders, args.customers, 0),
            race(registry, args.orders // 4, args.customers // 4, 3),
        ]
    )
    print("race dunning-run:", "OK, every message queued once, none over the cap" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
