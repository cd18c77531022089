from datetime import timedelta

from freezegun import freeze_time

from odoo.addons.payment_dunning.models.payment_order import RULES_CACHE_PARAM, company_today
from odoo.addons.payment_dunning.tools import order_summary
from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import SQL

from .common import PaymentDunningCase


@tagged("post_install", "-at_install")
class TestOrderTotals(PaymentDunningCase):
    """The totals above the orders list, the dashboard and the aging report are read from running
    totals that PostgreSQL keeps (tools/order_summary.py): whatever happens to the orders, they say
    what a GROUP BY over the orders says."""

    def setUp(self):
        super().setUp()
        self.today = company_today(self.company)
        late = self.today - timedelta(days=40)
        self.orders = (
            self.create_order(100.0, due_date=self.today + timedelta(days=3))
            | self.create_order(250.0, due_date=late)
            | self.create_order(75.5, due_date=self.today - timedelta(days=100))
            | self.create_order(60.0, due_date=self.today - timedelta(days=10), partner=self.customer_2)
            | self.create_order(
                999.0, due_date=self.today - timedelta(days=20), company=self.company_2, partner=self.customer_2
            )
        )

    def grouped_orders(self):
        """(company, currency, state) -> (orders, amount, balance), straight from the orders."""
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT company_id, currency_id, state, count(*), sum(amount_total), sum(balance)
                 FROM payment_order GROUP BY 1, 2, 3"""
        )
        return {row[:3]: (row[3], float(row[4]), float(row[5])) for row in self.env.cr.fetchall()}

    def running_totals(self):
        self.env.flush_all()
        self.env.cr.execute(
            f"""SELECT company_id, currency_id, state, sum(order_count), sum(amount_total), sum(balance)
                  FROM {order_summary.SUMMARY_TABLE} GROUP BY 1, 2, 3 HAVING sum(order_count) <> 0"""
        )
        return {row[:3]: (row[3], float(row[4]), float(row[5])) for row in self.env.cr.fetchall()}

    def searched_state_totals(self, orders_model, domain):
        """What get_state_totals says when it searches instead (the fallback of other domains), as
        panel() reads the panel: ({state: orders}, {(state, currency id): amount})."""
        groups = orders_model._read_group(domain, ["state", "currency_id"], ["amount_total:sum", "__count"])
        counts, amounts = {}, {}
        for state, currency, amount, count in groups:
            counts[state] = counts.get(state, 0) + count
            amounts[state, currency.id] = amount
        return counts, amounts

    def panel(self, orders_model, domain):
        """The panel above the orders list: ({state: orders}, {(state, currency id): amount})."""
        totals = [total for total in orders_model.get_panel_data(domain)["totals"] if total["count"]]
        counts = {total["state"]: total["count"] for total in totals}
        amounts = {
            (total["state"], amount["currency_id"]): amount["amount"] for total in totals for amount in total["amounts"]
        }
        return counts, amounts

    def test_totals_follow_every_change_of_the_orders(self):
        first, second, dollars, other_customer, _elsewhere = self.orders
        self.assertEqual(self.running_totals(), self.grouped_orders())
        first._register_payment(40.0, self.today)
        second._register_payment(250.0, self.today)
        self.env["payment.order"]._cron_mark_overdue()
        dollars.with_user(self.manager)._write_off(75.5, "uncollectable")
        other_customer.with_user(self.manager).action_cancel()
        other_customer.with_user(self.manager).unlink()
        self.env.cr.execute(
            "UPDATE payment_order SET due_date = due_date + 6 WHERE id = %s", [first.id]
        )  # statements of the addon's own SQL count as much as the ORM's
        self.env.cr.execute("UPDATE payment_order SET balance = balance WHERE company_id = %s", [self.company.id])
        self.assertEqual(self.running_totals(), self.grouped_orders())
        self.assertTrue(order_summary.compact(self.env.cr))
        self.assertEqual(self.running_totals(), self.grouped_orders(), "folding the rows changes no figure")
        self.env.cr.execute(
            SQL(
                "SELECT count(*), count(DISTINCT (company_id, currency_id, state, due_date)) FROM %s",
                SQL.identifier(order_summary.SUMMARY_TABLE),
            )
        )
        rows, keys = self.env.cr.fetchone()
        self.assertEqual(rows, keys, "one row per key after the job")

    def test_panel_totals_are_the_searched_ones_for_each_user(self):
        open_states = [("state", "in", ["pending", "overdue"])]
        self.orders[1]._register_payment(250.0, self.today)
        both = self.company | self.company_2
        for user, company in ((self.user, self.company), (self.user_company_2, self.company_2), (self.manager, both)):
            orders = self.env["payment.order"].with_user(user).with_context(allowed_company_ids=company.ids)
            for domain in (
                [],
                open_states,
                [("company_id", "=", self.company_2.id)],
                [("currency_id", "=", self.company_2.currency_id.id)],
            ):
                with self.subTest(user=user.login, domain=domain):
                    self.assertEqual(self.panel(orders, domain), self.searched_state_totals(orders, domain))
        orders = self.env["payment.order"].with_user(self.user).with_context(allowed_company_ids=self.company.ids)
        counts, amounts = self.panel(orders, [])
        self.assertEqual((counts["paid"], amounts["paid", self.company.currency_id.id]), (1, 250.0))
        self.assertNotIn(999.0, amounts.values(), "not another company's")

    def test_a_domain_the_totals_do_not_keep_is_searched(self):
        orders = self.env["payment.order"].with_user(self.user)
        domain = [("partner_id", "=", self.customer_2.id)]
        self.assertIsNone(order_summary.scope(orders, domain, ("state",), "payment_dunning.rule_payment_order_company"))
        self.assertEqual(self.panel(orders, domain), ({"pending": 1}, {("pending", self.company.currency_id.id): 60.0}))

    def test_a_user_with_another_record_rule_gets_the_totals_of_what_they_may_read(self):
        group = self.env["res.groups"].create({"name": "Collections: one customer only"})
        self.env["ir.rule"].create(
            {
                "name": "one customer",
                "model_id": self.env.ref("payment_dunning.model_payment_order").id,
                "groups": [(6, 0, group.ids)],
                "domain_force": f"[('partner_id', '=', {self.customer_2.id})]",
            }
        )
        self.user.groups_id = [(4, group.id)]
        orders = self.env["payment.order"].with_user(self.user).with_context(allowed_company_ids=self.company.ids)
        self.assertEqual(self.panel(orders, []), ({"pending": 1}, {("pending", self.company.currency_id.id): 60.0}))

    def test_only_collections_users_read_the_totals(self):
        outsider = self.env["res.users"].create(
            {"name": "Outsider", "login": "outsider_totals", "groups_id": [(6, 0, self.env.ref("base.group_user").ids)]}
        )
        with self.assertRaises(AccessError):
            self.env["payment.order"].with_user(outsider).get_state_totals([])
        with self.assertRaises(AccessError):
            self.env["payment.dunning.aging"].with_user(outsider).read_group([], ["balance:sum"], ["bucket"])

    def test_aging_report_is_the_view_grouped(self):
        self.orders[1]._register_payment(50.0, self.today)
        aging = self.env["payment.dunning.aging"].with_user(self.user)
        aggregates = ["__count", "balance:sum", "days_overdue:max", "order_count:sum"]
        from_totals = aging._read_group([], ["bucket"], aggregates)
        # a condition the totals do not keep makes the report search the view itself
        searched = aging._read_group([("balance", ">", 0)], ["bucket"], aggregates)
        self.assertEqual(from_totals, searched)
        self.assertEqual(
            {bucket: (count, balance) for bucket, count, balance, _days, _orders in from_totals},
            {"0": (1, 100.0), "31_60": (1, 200.0), "1_30": (1, 60.0), "90_plus": (1, 75.5)},
        )
        web = aging.read_group([], ["balance:sum"], ["bucket"], lazy=False)
        self.assertEqual(
            {group["bucket"]: (group["__count"], group["balance"]) for group in web},
            {"0": (1, 100.0), "1_30": (1, 60.0), "31_60": (1, 200.0), "90_plus": (1, 75.5)},
        )
        only = aging._read_group([("bucket", "in", ["31_60", "90_plus"])], ["bucket"], ["__count"])
        self.assertEqual(only, [("31_60", 1), ("90_plus", 1)])
        other = self.env["payment.dunning.aging"].with_user(self.user_company_2)
        other = other.with_context(allowed_company_ids=self.company_2.ids)
        self.assertEqual(other._read_group([], ["bucket"], ["__count", "balance:sum"]), [("1_30", 1, 999.0)])
        mixed = aging.with_context(allowed_company_ids=self.company.ids)
        self.assertEqual(
            mixed._read_group([("company_id", "=", self.company_2.id)], ["bucket"], ["__count"]),
            [],
            "asking for another company's orders gives none of them",
        )

    def test_dashboard_days_to_pay_and_due_this_week(self):
        first, second, *_rest = self.orders
        first._register_payment(100.0, self.today)
        second._register_payment(250.0, self.today)
        data = self.env["payment.order"].with_user(self.user).get_dashboard_data()
        self.assertEqual(data["days_to_pay"]["count"], 2)
        self.assertEqual(data["days_to_pay"]["after_due"], 18.5, "(40 + -3) / 2")
        self.assertEqual(data["due_this_week"]["count"], 0, "the order due in 3 days is paid")
        self.create_order(30.0, due_date=self.today + timedelta(days=6))
        data = self.env["payment.order"].with_user(self.user).get_dashboard_data()
        self.assertEqual(data["due_this_week"]["count"], 1)
        self.assertIn("30.00", data["due_this_week"]["formatted"])

    def test_a_new_timezone_counts_the_days_from_creation_again(self):
        order = self.orders[0]
        self.env.cr.execute(
            "UPDATE payment_order SET create_date = %s WHERE id = %s", [f"{self.today} 03:00:00", order.id]
        )
        order._register_payment(100.0, self.today + timedelta(days=2))
        self.company.collection_tz = "UTC"
        figures = self.env["payment.order"].with_user(self.user).get_dashboard_data()["days_to_pay"]
        self.assertEqual(figures["after_creation"], 2.0)
        self.company.collection_tz = "America/Lima"  # 03:00 UTC is the day before in Lima
        figures = self.env["payment.order"].with_user(self.user).get_dashboard_data()["days_to_pay"]
        self.assertEqual(figures["after_creation"], 3.0)

    def test_rules_figures_are_reused_for_the_configured_seconds(self):
        self.env["ir.config_parameter"].set_param(RULES_CACHE_PARAM, "300")
        rule = self.env["dunning.template"].create(
            {"name": "Reused", "days_from": 1, "days_to": 60, "interval_days": 7}
        )
        orders = self.env["payment.order"].with_user(self.user)

        def messages():
            return sum(row["messages"] for row in orders.get_dashboard_data()["rules"]["rules"] if row["id"] == rule.id)

        with freeze_time() as frozen:
            self.assertEqual(messages(), 0)
            lines = self.env["payment.order.notification"]._queue(rule, self.orders[1], channels=["email"])
            lines.sudo().write({"state": "sent", "sent_at": lines.create_date})
            self.assertEqual(messages(), 0, "within 5 minutes, the figures of the first opening")
            frozen.tick(timedelta(seconds=301))
            self.assertEqual(messages(), 1)

    def test_a_change_of_no_total_appends_nothing(self):
        """The triggers keep what a statement changed of the totals: rewriting what they do not count,
        on every order, appends no row."""
        self.env.flush_all()
        self.env.cr.execute(SQL("SELECT count(*) FROM %s", SQL.identifier(order_summary.SUMMARY_TABLE)))
        before = self.env.cr.fetchone()[0]
        self.env.cr.execute(
            "UPDATE payment_order SET concept = 'Internet, December', balance = balance, amount_total = amount_total"
        )
        self.env.cr.execute(SQL("SELECT count(*) FROM %s", SQL.identifier(order_summary.SUMMARY_TABLE)))
        self.assertEqual(self.env.cr.fetchone()[0], before)
