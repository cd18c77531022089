import { registry } from "@web/core/registry";

/**
 * One tour per main screen, each waiting until its screen shows what it is for; the test
 * (TestScreens) photographs the screen each one ends on for the README and the apps page.
 */
const SCREENS = {
    dashboard: ".o_payment_dunning_dashboard .o_dashboard_state_paid",
    orders: ".o_payment_order_totals .o_payment_order_total_overdue",
    order: ".o-mail-Message:contains(Tesorería promete pagar)",
    plan: ".o_field_widget[name=line_ids] .o_data_row",
    template: ".o_field_widget[name=body]",
    aging: ".o_pivot .o_pivot_cell_value",
    settings: "#dunning_notifications",
    payments: ".o_list_renderer .o_data_row td[name=reference]:contains(OP-552901)",
    promises: ".o_list_renderer .o_data_row td[name=partner_id]:contains(Colegio)",
    pay_now: "#o_collections_payment input[name=o_payment_radio]",
};

for (const [name, trigger] of Object.entries(SCREENS)) {
    registry.category("web_tour.tours").add(`payment_dunning_screen_${name}`, {
        steps: () => [{ content: `The ${name} screen is shown`, trigger }],
    });
}

// the list with its Actions column on the open orders
registry.category("web_tour.tours").add("payment_dunning_screen_order_actions", {
    steps: () => [
        {
            content: "The Actions column of the orders list",
            trigger: ".o_payment_order_actions_header",
        },
        {
            trigger: ".o_data_row button.o_payment_order_row_pay",
        },
    ],
});

// the New Order dialog (left as it opens: a tour may not end on a form with unsaved changes)
registry.category("web_tour.tours").add("payment_dunning_screen_new_order", {
    steps: () => [
        {
            trigger: ".o_control_panel_main_buttons .o_list_button_add",
            run: "click",
        },
        {
            content: "The New Order dialog is shown",
            trigger: ".modal .o_payment_order_new .o_field_widget[name=amount] input",
        },
    ],
});

// the Register Payment dialog of an order (left as it opens)
registry.category("web_tour.tours").add("payment_dunning_screen_register_payment", {
    steps: () => [
        {
            trigger: ".o_form_view .o_payment_order_register_payment",
            run: "click",
        },
        {
            content: "The Register Payment dialog is shown",
            trigger: ".modal .o_field_widget[name=amount] input",
        },
    ],
});

// Settings: the late-fee preview, before turning them on
registry.category("web_tour.tours").add("payment_dunning_screen_late_fees", {
    steps: () => [
        {
            trigger: "button[name=action_preview_late_fees]",
            run: "click",
        },
        {
            content: "The preview of today's charges is shown",
            trigger: ".modal .o_field_widget[name=total]",
        },
    ],
});
