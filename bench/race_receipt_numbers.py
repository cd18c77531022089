#!/usr/bin/env python3
"""Race proof: the first orders and payments of a company, made at the same moment by two clerks.

A company's first order makes its order sequence, its first payment its receipt sequence. For each
of ``--rounds`` new companies, two threads with their own database connection each create an order
and register a payment on it, behind a barrier; a worker that fails to serialize tries again, as
Odoo replays an HTTP request. Checks that each company has one sequence of each and that the order
and receipt numbers are distinct (the two-node load test once found two REC/…/00001). Exits
non-zero when the proof fails.

    python3 bench/race_receipt_numbers.py -c .devenv/odoo.conf -d DB [--rounds 5]
"""

import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from odoo_script import load_registry, script_arguments, superuser_env

TAG = "race-receipt-numbers"


def seed(env, round_no):
    company = env["res.company"].create({"name": f"{TAG} {round_no}", "currency_id": env.company.currency_id.id})
    customer = env["res.partner"].create({"name": f"{TAG} customer {round_no}", "company_id": company.id})
    env.cr.commit()
    return company.id, customer.id


def order_and_pay(registry, barrier, company_id, customer_id, outcome):
    from psycopg2.errors import SerializationFailure

    for attempt in range(5):
        with superuser_env(registry) as root:
            env = root(context={"allowed_company_ids": [company_id]})
            if attempt == 0:
                barrier.wait()
            try:
                order = env["payment.order"].create(
                    {"partner_id": customer_id, "due_date": "2026-01-15", "amount": 50.0, "company_id": company_id}
                )
                order._register_payment(10.0, order.due_date)
                env.cr.commit()
                outcome["attempts"] = attempt + 1
                return
            except SerializationFailure:
                env.cr.rollback()
            except Exception as error:  # a duplicate number or anything else fails the proof
                outcome["error"] = repr(error)
                return
    outcome["error"] = "no attempt went through"


def main():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    registry = load_registry(args)
    problems, retried = [], 0
    for round_no in range(args.rounds):
        with superuser_env(registry) as env:
            company_id, customer_id = seed(env, round_no)
        barrier = threading.Barrier(2)
        outcomes = [{}, {}]
        threads = [
            threading.Thread(target=order_and_pay, args=(registry, barrier, company_id, customer_id, outcome))
            for outcome in outcomes
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        retried += sum(outcome.get("attempts", 1) > 1 for outcome in outcomes)
        problems += [f"round {round_no}: {outcome['error']}" for outcome in outcomes if "error" in outcome]
        with superuser_env(registry) as env:
            for table, code in (("payment_order", "payment.order"), ("payment_order_payment", "payment.order.payment")):
                env.cr.execute(
                    "SELECT count(*) FROM ir_sequence WHERE code = %s AND company_id = %s", [code, company_id]
                )
                sequences = env.cr.fetchone()[0]
                env.cr.execute(f"SELECT name FROM {table} WHERE company_id = %s", [company_id])
                names = [row[0] for row in env.cr.fetchall()]
                if sequences != 1 or len(names) != 2 or len(set(names)) != 2:
                    problems.append(f"round {round_no}: {sequences} {code} sequence(s), numbers {names}")
    print(f"{args.rounds} companies, two first orders and payments at once each; {retried} worker(s) replayed")
    for problem in problems:
        print("FAILED:", problem)
    print("race receipt numbers:", "OK, one sequence of each and distinct numbers" if not problems else "FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
