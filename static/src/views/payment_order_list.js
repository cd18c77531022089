import { Component, onWillStart, onWillUpdateProps, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { listView } from "@web/views/list/list_view";
import { ListRenderer } from "@web/views/list/list_renderer";

const STATE_COLORS = {
    paid: "success",
    pending: "warning",
    overdue: "danger",
    cancelled: "secondary",
};

/**
 * Totals per state (README, "Payment orders") of the orders matching the current search.
 * Clicking a total shows only the orders of that state.
 */
export class PaymentOrderTotals extends Component {
    static template = "payment_dunning.PaymentOrderTotals";
    static props = { list: Object };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.state = useState({ totals: [], automaticTasks: true, canConfigure: false });
        this.loadedKey = null;
        onWillStart(() => this.load(this.props));
        onWillUpdateProps((nextProps) => this.load(nextProps));
    }

    /** The list reloads after a search, a pay or a cancel: refresh only when what it shows changed. */
    listKey(list) {
        const states = list.records.map((record) => `${record.resId}:${record.data.state}`);
        return JSON.stringify([list.domain, list.count, states]);
    }

    async load(props) {
        const key = this.listKey(props.list);
        if (key === this.loadedKey) {
            return;
        }
        this.loadedKey = key;
        const data = await this.orm.call("payment.order", "get_panel_data", [], {
            domain: props.list.domain,
        });
        this.state.totals = data.totals;
        this.state.automaticTasks = data.automatic_tasks;
        this.state.canConfigure = data.can_configure;
        this.state.settingsAction = data.settings_action;
    }

    openSettings() {
        this.action.doAction(this.state.settingsAction);
    }

    color(state) {
        return STATE_COLORS[state] || "secondary";
    }

    filterState(state) {
        const searchModel = this.env.searchModel;
        const [item] = searchModel.getSearchItems((searchItem) => searchItem.name === state);
        if (!item) {
            return;
        }
        searchModel.query = [];
        searchModel.toggleSearchItem(item.id);
    }
}

export class PaymentOrderListRenderer extends ListRenderer {
    static template = "payment_dunning.PaymentOrderListRenderer";
    static components = { ...ListRenderer.components, PaymentOrderTotals };
}

export const paymentOrderListView = {
    ...listView,
    Renderer: PaymentOrderListRenderer,
};

registry.category("views").add("payment_order_list", paymentOrderListView);
