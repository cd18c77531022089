#!/usr/bin/env python3
"""Race proof: the customer's browser and the post-processing job confirm one online payment at once.

Seeds a committed customer with open orders and a confirmed (done) transaction that pays them all,
then lets two threads, each with its own database connection, register it behind a barrier (what
``/payment/status/poll`` and ``payment.transaction._cron_post_process`` both do). A worker that
loses the race fails to serialize and tries again, as the poll and the job do. Checks that each
order got exactly one payment, that the balances went to zero once, and that each payment has its
receipt queued once per channel and contact. Exits non-zero when the proof fails.

    python3 bench/race_pay_now.py -c .devenv/odoo.conf -d DB [--orders 5] [--rounds 5]
"""

import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from odoo_script import load_registry, script_arguments, superuser_env

TAG = "race-pay-now"


def seed(env, orders_count, round_no):
    company = env.company
    # receipts go to a closed local port: the proof counts them, nothing leaves the machine
    env["ir.mail_server"].search([("name", "=", TAG)]).unlink()
    env["ir.mail_server"].create({"name": TAG, "smtp_host": "127.0.0.1", "smtp_port": 9, "sequence": 1})
    customer = env["res.partner"].create(
        {"name": f"{TAG} {round_no}", "is_company": True, "collection_email": f"pagos{round_no}@race.example.com"}
    )
    orders = env["payment.order"].create(
        [
            {"partner_id": customer.id, "due_date": "2026-01-15", "amount": 10.0 + index, "concept": TAG}
            for index in range(orders_count)
        ]
    )
    provider = env["payment.provider"].search([("company_id", "=", company.id)], limit=1)
    tx = env["payment.transaction"].create(
        {
            "provider_id": provider.id,
            "payment_method_id": provider.payment_method_ids[:1].id
            or env["payment.method"].with_context(active_test=False).search([], limit=1).id,
            "reference": f"{TAG}-{round_no}-{customer.id}",
            "amount": sum(orders.mapped("balance")),
            "currency_id": company.currency_id.id,
            "partner_id": customer.id,
            "payment_order_ids": [(6, 0, orders.ids)],
            "state": "done",
        }
    )
    env.cr.commit()
    return tx.id, orders.ids


def worker(registry, barrier, tx_id, results, name):
    from psycopg2 import OperationalError

    attempts = 0
    registered = 0
    while attempts < 10:
        attempts += 1
        with superuser_env(registry) as env:
            tx = env["payment.transaction"].browse(tx_id)
            tx.amount  # noqa: B018 -- the snapshot starts before the other worker commits
            if attempts == 1:
                barrier.wait()
            try:
                registered += len(tx._register_payment_order_payments())
                env.cr.commit()
                break
            except OperationalError:
                env.cr.rollback()
    results[name] = {"registered": registered, "attempts": attempts}


def check(registry, tx_id, order_ids):
    with superuser_env(registry) as env:
        orders = env["payment.order"].browse(order_ids)
        payments = env["payment.order.payment"].search([("transaction_id", "=", tx_id)])
        receipts = payments.receipt_notification_ids
        per_order = {order.id: len(payments.filtered(lambda p, order=order: p.order_id == order)) for order in orders}
        ok = (
            all(count == 1 for count in per_order.values())
            and set(orders.mapped("state")) == {"paid"}
            and len(set(receipts.mapped("dedupe_key"))) == len(receipts)
            and set(receipts.payment_id.ids) == set(payments.ids)
        )
        return ok, {"payments": len(payments), "receipt lines": len(receipts), "states": set(orders.mapped("state"))}


def main():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    registry = load_registry(args)
    failures = 0
    for round_no in range(args.rounds):
        with superuser_env(registry) as env:
            tx_id, order_ids = seed(env, args.orders, round_no)
        barrier = threading.Barrier(2)
        results = {}
        threads = [
            threading.Thread(target=worker, args=(registry, barrier, tx_id, results, name))
            for name in ("browser", "job")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ok, figures = check(registry, tx_id, order_ids)
        total = sum(result["registered"] for result in results.values())
        # a worker that died of another error than a serialization failure would be an error in the
        # customer's browser or the job's log
        ok = ok and total == args.orders and len(results) == 2
        print(f"round {round_no}: workers {results}; {figures}: {'OK' if ok else 'FAILED'}")
        failures += not ok
    print("race pay-now:", "OK, every order paid once by its online payment" if not failures else "FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
