#!/usr/bin/env python3
"""Benchmark against the peers: OCA credit control and OCA contract, on the same Odoo and the same data.

    ./dev bench-peers [--invoices 100000] [--customers 10000] [--contracts 20000]

(``./dev bench-peers`` downloads the two OCA addons from PyPI into ~/.cache, outside the checkout
-- they are AGPL: benchmarked, never imported nor shipped --, installs them with this addon on a
fresh database, runs this script and drops the database.)

1. Dunning. ``--customers`` customers and ``--invoices`` posted customer invoices, due over the
   last year; each invoice gets its payment order (``_create_from_invoices``, not timed). The same
   rules on both sides, by email, one message per customer and level: levels at 0, 30 and 60 days
   past due. OCA: a ``credit.control.run`` (its daily pass: credit lines), then its communications
   (the emails, queued). Ours: the overdue job and the dunning run (messages queued; they are
   rendered when the send queue sends them, measured by bench_send_queue).
2. Recurring billing. ``--contracts`` customers with one monthly contract line (OCA ``contract``,
   its recurring-invoice cron) and the same customers with one monthly service plan (our
   ``_generate_orders``).
3. A one-screen comparison of what each produced.

Prints seconds, peak memory growth (sampled RSS) and counts per side, and the ratios. Exits
non-zero when a side produced nothing or ours is not faster.
"""

import datetime
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from odoo_script import load_registry, script_arguments, superuser_env

TAG = "bench-peers"
LEVELS = (0, 30, 60)


class PeakRss:
    """The process's resident memory, sampled every 20 ms while a block runs: its peak above the start."""

    def __init__(self):
        self.peak = self.start = self._rss()
        self._stop = threading.Event()

    @staticmethod
    def _rss():
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def mib(self):
        return (self.peak - self.start) / 2**20


def timed(function):
    with PeakRss() as memory:
        start = time.perf_counter()
        result = function()
        seconds = time.perf_counter() - start
    return result, seconds, memory.mib


def ensure_accounting(env):
    company = env.company
    # OCA's emails are sent as it commits: to a closed local port, so nothing leaves the machine
    env["ir.mail_server"].create({"name": TAG, "smtp_host": "127.0.0.1", "smtp_port": 9, "sequence": 1})
    if not env["account.journal"].search_count([("company_id", "=", company.id), ("type", "=", "sale")]):
        env["account.chart.template"].try_loading("generic_coa", company, install_demo=False)
    env.cr.commit()


def seed_customers(env, count):
    env.cr.execute(
        """
        INSERT INTO res_partner (name, complete_name, active, is_company, type, company_id, autopost_bills,
                                 create_date, write_date, ref, email, collection_email, lang)
        SELECT 'Peer customer ' || g, 'Peer customer ' || g, true, true, 'contact', %s, 'ask', now(), now(), %s,
               'peer' || g || '@example.com', 'peer' || g || '@example.com', 'en_US'
          FROM generate_series(1, %s) g
        RETURNING id
        """,
        (env.company.id, TAG, count),
    )
    ids = [row[0] for row in env.cr.fetchall()]
    env.cr.execute("UPDATE res_partner SET commercial_partner_id = id WHERE id = ANY(%s)", (ids,))
    env.cr.commit()
    return env["res.partner"].browse(ids)


def seed_invoices(env, customers, count, batch=1000):
    """Posted invoices through the ORM (as users make them), due over the last year."""
    from odoo import Command

    today = datetime.date.today()
    invoice_ids = []
    for start in range(0, count, batch):
        vals_list = []
        for index in range(start, min(start + batch, count)):
            due = today - datetime.timedelta(days=index % 365)
            vals_list.append(
                {
                    "move_type": "out_invoice",
                    "partner_id": customers[index % len(customers)].id,
                    "invoice_date": due,
                    "invoice_date_due": due,
                    "invoice_line_ids": [
                        Command.create(
                            {"name": "Internet service", "quantity": 1, "price_unit": 50 + index % 100, "tax_ids": []}
                        )
                    ],
                }
            )
        moves = env["account.move"].with_context(tracking_disable=True).create(vals_list)
        moves.action_post()
        invoice_ids += moves.ids
        env.cr.commit()
        env.invalidate_all()
        print(f"  {len(invoice_ids)} invoices posted", end="\r", flush=True)
    print()
    return env["account.move"].browse(invoice_ids)


def seed_orders(env, invoices, batch=2000):
    for start in range(0, len(invoices), batch):
        env["payment.order"]._create_from_invoices(invoices[start : start + batch])
        env.cr.commit()
        env.invalidate_all()


def oca_policy(env):
    template = env.ref("account_credit_control.email_template_credit_control_base")
    # its emails attach a PDF each (about a second apiece); our rules attach none either
    template.report_template_ids = False
    receivable = env["account.account"].search(
        [("account_type", "=", "asset_receivable"), ("company_ids", "in", env.company.id)]
    )
    policy = env["credit.control.policy"].create(
        {
            "name": TAG,
            "account_ids": [(6, 0, receivable.ids)],
            "level_ids": [
                (
                    0,
                    0,
                    {
                        "name": f"{days} days",
                        "level": level,
                        "computation_mode": "net_days",
                        "delay_days": days,
                        "channel": "email",
                        "email_template_id": template.id,
                        "custom_text": "Please pay",
                        "custom_mail_text": "<p>Please pay</p>",
                    },
                )
                for level, days in enumerate(LEVELS, start=1)
            ],
        }
    )
    env.company.credit_policy_id = policy
    env.cr.commit()
    return policy


def oca_daily_pass(env, policy):
    run = env["credit.control.run"].create({"date": datetime.date.today(), "policy_ids": [(6, 0, policy.ids)]})
    lines, line_seconds, line_mib = timed(lambda: run._generate_credit_lines())
    env.cr.commit()

    def communications():
        run.set_to_ready_lines()
        run.run_channel_action()
        return env["mail.mail"].search_count([("model", "=", "credit.control.communication")])

    mails, mail_seconds, mail_mib = timed(communications)
    env.cr.commit()
    return {
        "lines": len(lines),
        "line_seconds": line_seconds,
        "line_mib": line_mib,
        "mails": mails,
        "mail_seconds": mail_seconds,
        "mail_mib": mail_mib,
    }


def our_rules(env):
    env["dunning.template"].search([("auto_send", "=", True)]).auto_send = False
    bounds = [*LEVELS[1:], None]
    env["dunning.template"].create(
        [
            {
                "name": f"{TAG} {days} days",
                "auto_send": True,
                "days_from": days,
                "days_to": (end - 1) if end else days,
                "open_end": end is None,
                "interval_days": 30,
                "send_mode": "customer",
                "channel_whatsapp": False,
                "attach_statement": False,
            }
            for days, end in zip(LEVELS, bounds, strict=True)
        ]
    )
    env.cr.commit()


def our_daily_pass(env):
    def run():
        env["payment.order"]._cron_mark_overdue()
        return env["dunning.template"]._dunning_run(commit=True)

    queued, seconds, mib = timed(run)
    return {"queued": queued, "seconds": seconds, "mib": mib}


def seed_contracts(env, customers):
    from odoo import Command

    product = env["product.product"].create({"name": "Internet 100 Mbps", "type": "service", "list_price": 89.9})
    today = datetime.date.today()
    batch = 1000
    for start in range(0, len(customers), batch):
        env["contract.contract"].with_context(tracking_disable=True).create(
            [
                {
                    "name": f"{TAG} {partner.id}",
                    "partner_id": partner.id,
                    "contract_type": "sale",
                    "line_recurrence": True,
                    "contract_line_ids": [
                        Command.create(
                            {
                                "product_id": product.id,
                                "name": "Internet 100 Mbps",
                                "quantity": 1,
                                "price_unit": 89.9,
                                "recurring_rule_type": "monthly",
                                "recurring_interval": 1,
                                "date_start": today,
                                "recurring_next_date": today,
                            }
                        )
                    ],
                }
                for partner in customers[start : start + batch]
            ]
        )
        env.cr.commit()
    return product


def seed_plans(env, customers):
    today = datetime.date.today()
    env.cr.execute(
        """
        INSERT INTO service_plan (name, sequence, active, partner_id, company_id, amount, total_amount, payment_mode,
                                  installments, installments_billed, next_due_date, billing_day,
                                  period_months, state, billing_done, create_date, write_date, create_uid, write_uid)
        SELECT 'Internet 100 Mbps', 10, true, p.id, p.company_id, 89.9, NULL, 'recurring', 1, 0,
               %(today)s, %(day)s, 1, 'active', false, now(), now(), 1, 1
          FROM res_partner p
         WHERE p.id = ANY(%(ids)s)
        """,
        {"today": today, "day": today.day, "ids": customers.ids},
    )
    env.cr.commit()


def ratio(theirs, ours):
    return f"{theirs / ours:.1f}x" if ours else "n/a"


def compare_dunning(env, args, failures):
    print(f"1. Dunning: {args.customers} customers, {args.invoices} posted invoices due over the last year")
    customers = seed_customers(env, args.customers)
    started = time.perf_counter()
    invoices = seed_invoices(env, customers, args.invoices)
    seed_orders(env, invoices)
    print(f"  seeded invoices and their payment orders in {time.perf_counter() - started:.0f}s")
    policy = oca_policy(env)
    our_rules(env)
    ours = our_daily_pass(env)
    oca = oca_daily_pass(env, policy)
    oca_total = oca["line_seconds"] + oca["mail_seconds"]
    print(f"{'':34}{'seconds':>10}{'peak MiB':>10}{'messages':>10}")
    print(f"{'ours: overdue + dunning run':34}{ours['seconds']:>10.1f}{ours['mib']:>10.0f}{ours['queued']:>10}")
    print(f"{'OCA: credit lines':34}{oca['line_seconds']:>10.1f}{oca['line_mib']:>10.0f}{oca['lines']:>10}")
    mails = oca["mails"]
    print(f"{'OCA: communications (emails)':34}{oca['mail_seconds']:>10.1f}{oca['mail_mib']:>10.0f}{mails:>10}")
    print(f"  OCA's whole pass takes {ratio(oca_total, ours['seconds'])} ours")
    if not ours["queued"] or not oca["mails"]:
        failures.append("a dunning side produced no message")
    if ours["seconds"] >= oca_total:
        failures.append("our dunning pass is not faster")
    return oca


def compare_billing(env, args, failures):
    contracts = args.contracts
    print(f"2. Recurring billing: {contracts} customers with a monthly contract / service plan")
    customers = seed_customers(env, contracts)
    seed_contracts(env, customers)
    seed_plans(env, customers)

    def oca_billing():
        env["contract.contract"].cron_recurring_create_invoice()
        env.cr.commit()
        return env["account.move"].search_count(
            [("partner_id", "in", customers.ids), ("move_type", "=", "out_invoice")]
        )

    def our_billing():
        return len(env["service.plan"]._generate_orders(env.company, commit=True))

    our_orders, our_seconds, our_mib = timed(our_billing)
    oca_invoices, oca_seconds, oca_mib = timed(oca_billing)
    print(f"{'':34}{'seconds':>10}{'peak MiB':>10}{'documents':>10}")
    print(f"{'ours: _generate_orders':34}{our_seconds:>10.1f}{our_mib:>10.0f}{our_orders:>10}")
    print(f"{'OCA: recurring invoices cron':34}{oca_seconds:>10.1f}{oca_mib:>10.0f}{oca_invoices:>10}")
    print(f"  OCA's cron takes {ratio(oca_seconds, our_seconds)} ours")
    if our_orders != contracts or oca_invoices != contracts:
        failures.append(f"billing: expected {contracts} documents each side")
    if our_seconds >= oca_seconds:
        failures.append("our billing is not faster")


def print_features(env, oca):
    env.cr.execute(
        "SELECT channel, count(*) FROM payment_order_notification WHERE template_id IN "
        "(SELECT id FROM dunning_template WHERE name->>'en_US' LIKE %s) GROUP BY channel",
        (f"{TAG}%",),
    )
    our_channels = dict(env.cr.fetchall())
    print("3. What each produced")
    rows = (
        ("messages per channel", f"email {our_channels.get('email', 0)}", f"email {oca['mails']} (letters: print)"),
        ("one message per customer and level", "yes (a digest rule per level)", "yes (one level up per run)"),
        ("WhatsApp", "yes (gateway, same queue)", "no"),
        ("statement attached", "PDF per message (optional)", "PDF per email (off here)"),
        ("history", "Communications log + chatter", "credit control lines"),
        ("sent twice on a rerun / 2 workers", "no (keys, SKIP LOCKED)", "rerun refused same day"),
        ("pay-now link, receipts", "yes", "no"),
    )
    print(f"  {'':36}{'payment_dunning':32}OCA")
    for label, ours_text, oca_text in rows:
        print(f"  {label:36}{ours_text:32}{oca_text}")


def main():
    parser = script_arguments(__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--contracts", type=int, default=20_000)
    args = parser.parse_args()
    failures = []
    with superuser_env(load_registry(args)) as env:
        env.company.partner_id.tz = "UTC"
        env["ir.config_parameter"].set_param("payment_dunning.notifications_enabled", True)
        ensure_accounting(env)
        oca = compare_dunning(env, args, failures)
        compare_billing(env, args, failures)
        print_features(env, oca)
    for failure in failures:
        print("FAILED:", failure)
    print("peers benchmark:", "OK" if not failures else "FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
