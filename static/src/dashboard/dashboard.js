import { Component, onWillStart, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { _t } from "@web/core/l10n/translation";

const STATE_COLORS = {
    paid: "success",
    pending: "warning",
    overdue: "danger",
    cancelled: "secondary",
};

/**
 * The landing screen of Collections: totals per state, overdue balance by age, messages of the
 * last 30 days, orders due this week, what was collected this month (by method), promises to pay,
 * average days to pay and which rule works. Every figure opens its list.
 */
export class CollectionsDashboard extends Component {
    static template = "payment_dunning.CollectionsDashboard";
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.state = useState({ data: null });
        onWillStart(() => this.load());
    }

    async load() {
        this.state.data = await this.orm.call("payment.order", "get_dashboard_data", []);
    }

    color(state) {
        return STATE_COLORS[state] || "secondary";
    }

    openOrders(domain, name) {
        this.action.doAction({
            type: "ir.actions.act_window",
            name,
            res_model: "payment.order",
            views: [
                [false, "list"],
                [false, "form"],
            ],
            domain,
        });
    }

    openState(total) {
        this.openOrders([["state", "=", total.state]], total.label);
    }

    openBucket(bucket) {
        this.action.doAction({
            type: "ir.actions.act_window",
            name: _t("Aging: %s", bucket.label),
            res_model: "payment.dunning.aging",
            views: [
                [false, "list"],
                [false, "pivot"],
            ],
            domain: bucket.domain,
        });
    }

    openMessages(state) {
        this.action.doAction({
            type: "ir.actions.act_window",
            name: _t("Communications of the last 30 days"),
            res_model: "payment.order.notification",
            views: [
                [false, "list"],
                [false, "form"],
            ],
            domain: [
                ["state", "=", state],
                ["create_date", ">=", this.state.data.messages.since],
            ],
        });
    }

    openDueThisWeek() {
        this.openOrders(this.state.data.due_this_week.domain, _t("Due this week"));
    }

    openPayments(domain, name) {
        this.action.doAction({
            type: "ir.actions.act_window",
            name: name || _t("Collected this month"),
            res_model: "payment.order.payment",
            views: [
                [false, "list"],
                [false, "form"],
            ],
            domain,
        });
    }

    openPromises(domain) {
        this.action.doAction({
            type: "ir.actions.act_window",
            name: _t("Promises to Pay"),
            res_model: "payment.order.promise",
            views: [
                [false, "list"],
                [false, "form"],
            ],
            domain,
        });
    }

    openSettings() {
        this.action.doAction(this.state.data.settings_action);
    }
}

registry.category("actions").add("payment_dunning.dashboard", CollectionsDashboard);
