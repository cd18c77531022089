#!/usr/bin/env python3
"""Benchmark: importing a payment orders file of N rows (default 100,000) against C customers (20,000).

Seeds the customers with set-based SQL, writes the CSV file the way an ERP export would (several
installments per payment code), then times the dry run and the import of the import log record
and prints rows per second and the peak memory of the process (targets: 2,000 rows/s, 500 MB).

    python3 bench/bench_import.py -c .devenv/odoo.conf -d DB [--rows 100000] [--customers 20000]

It commits its data and deletes it at the end.
"""

import base64
import io
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from odoo_script import load_registry, script_arguments, superuser_env

BENCH_TAG = "bench-import"


def parse_args():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    return parser.parse_args()


def seed(env, customers):
    env.cr.execute(
        """
        INSERT INTO res_partner (name, complete_name, active, is_company, type, company_id, autopost_bills,
                                 create_date, write_date, ref, document_type, document_number)
        SELECT 'Bench customer ' || g, 'Bench customer ' || g, true, false, 'contact', %s, 'ask', now(), now(),
               %s, 'dni', 'B' || lpad(g::text, 8, '0')
          FROM generate_series(1, %s) g
        """,
        (env.company.id, BENCH_TAG, customers),
    )
    env.cr.commit()


def orders_file(rows, customers):
    buffer = io.StringIO()
    buffer.write("Tipo de documento;Número de documento;Código de pago;Cuota;Monto (OP);Fecha de vencimiento;Saldo\n")
    for row in range(rows):
        customer = 1 + row % customers
        installment = 1 + row // customers
        buffer.write(
            f"DNI;B{customer:08d};{BENCH_TAG}-{customer};{installment};{100 + row % 900}.50;"
            f"2027-{1 + installment % 12:02d}-15;\n"
        )
    return buffer.getvalue().encode("utf-8")


def cleanup(env):
    env.cr.execute("DELETE FROM payment_order WHERE payment_code LIKE %s", (BENCH_TAG + "-%",))
    env.cr.execute("DELETE FROM payment_dunning_import WHERE filename = %s", (BENCH_TAG + ".csv",))
    env.cr.execute("DELETE FROM res_partner WHERE ref = %s", (BENCH_TAG,))
    env.cr.commit()


def main():
    args = parse_args()
    with superuser_env(load_registry(args)) as env:
        cleanup(env)
        seed(env, args.customers)
        content = orders_file(args.rows, args.customers)
        print(f"file: {args.rows} rows, {len(content) / 1e6:.1f} MB, {args.customers} customers")
        try:
            record = env["payment.dunning.import"].create(
                {"kind": "orders", "file": base64.b64encode(content), "filename": BENCH_TAG + ".csv"}
            )
            env.cr.commit()
            start = time.perf_counter()
            record.action_check()
            check_seconds = time.perf_counter() - start
            env.cr.commit()
            start = time.perf_counter()
            record.action_import()
            import_seconds = time.perf_counter() - start
            env.cr.commit()
            state, created, errors = record.state, record.rows_create, record.rows_error
            env.cr.execute("SELECT count(*) FROM payment_order WHERE payment_code LIKE %s", (BENCH_TAG + "-%",))
            in_database = env.cr.fetchone()[0]
        finally:
            cleanup(env)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"dry run: {check_seconds:.1f}s = {args.rows / check_seconds:.0f} rows/s")
    print(f"import:  {import_seconds:.1f}s = {args.rows / import_seconds:.0f} rows/s (target >= 2000)")
    print(f"peak RSS of the whole script: {peak_mb:.0f} MiB (target < 500 MB)")
    ok = state == "done" and created == in_database == args.rows and errors == 0
    if not ok:
        print(f"MISMATCH: state {state}, {created} to create, {in_database} in the database, {errors} errors")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
