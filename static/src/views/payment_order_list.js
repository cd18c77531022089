import { Component, onWillStart, onWillUpdateProps, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { ListController } from "@web/views/list/list_controller";
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

/**
 * "+ New Order" opens the New Order dialog (customer, due date, amount, concept), not the full
 * form; the dialog links to the form for orders of several lines. The list reloads when it closes.
 */
export class PaymentOrderListController extends ListController {
    async createRecord() {
        await this.actionService.doAction("payment_dunning.action_payment_order_new", {
            onClose: () => this.model.load(),
        });
    }
}

export const paymentOrderListView = {
    ...listView,
    Controller: PaymentOrderListController,
    Renderer: PaymentOrderListRenderer,
};

registry.category("views").add("payment_order_list", paymentOrderListView);
