import { registry } from "@web/core/registry";

/**
 * A collections user creates an order in the New Order dialog, pays it from the list's Actions
 * column, finds it by customer and sees the totals panel.
 */
registry.category("web_tour.tours").add("payment_dunning_order_tour", {
    url: "/odoo/action-payment_dunning.action_payment_order",
    steps: () => [
        {
            content: "While the automatic tasks are off, the list says so",
            trigger: ".o_payment_dunning_cron_banner:contains(Automatic tasks)",
        },
        {
            content: "The totals panel is above the list",
            trigger: ".o_payment_order_totals .o_payment_order_total_overdue",
        },
        {
            content: "New opens the New Order dialog",
            trigger: ".o_control_panel_main_buttons .o_list_button_add",
            run: "click",
        },
        {
            content: "Pick the customer",
            trigger: ".modal .o_field_widget[name=partner_id] input",
            run: "edit Tour Customer",
        },
        {
            trigger: ".ui-menu-item a:contains(Tour Customer)",
            run: "click",
        },
        {
            content: "Due date",
            trigger: ".modal .o_field_widget[name=due_date] input",
            run: "edit 12/31/2026",
        },
        {
            content: "Amount, no order line to type",
            trigger: ".modal .o_field_widget[name=amount] input",
            run: "edit 123.45",
        },
        {
            content: "Concept",
            trigger: ".modal .o_field_widget[name=concept] input",
            run: "edit Fiber 500 Mbps",
        },
        {
            content: "Create Order",
            trigger: ".modal-footer button[name=action_create]",
            run: "click",
        },
        {
            content: "The dialog closes on the list, which shows the new pending order",
            trigger: "body:not(:has(.modal)) .o_data_row.text-warning:contains(Tour Customer):contains(Fiber 500 Mbps)",
        },
        {
            content: "Pay it from its Actions column",
            trigger: ".o_data_row:contains(Tour Customer) button.o_payment_order_row_pay",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "It is paid: green, and no action is left on it",
            trigger: ".o_data_row.text-success:contains(Tour Customer):not(:has(button.o_payment_order_row_pay))",
        },
        {
            content: "Search the customer",
            trigger: ".o_searchview_input",
            run: "edit Tour Customer",
        },
        {
            trigger: ".o_searchview_autocomplete .o_menu_item:contains(Search Customer)",
            run: "click",
        },
        {
            content: "The panel counts the paid order of that customer",
            trigger: ".o_payment_order_total_paid .o_payment_order_total_amount:contains(123.45)",
        },
        {
            trigger: '.o_payment_order_total_paid .o_payment_order_total_count:contains("(1)")',
        },
        {
            content: "and the list shows it in green",
            trigger: ".o_data_row.text-success:contains(Fiber 500 Mbps)",
        },
        {
            content: "Clicking a total filters by its state",
            trigger: ".o_payment_order_total_pending",
            run: "click",
        },
        {
            trigger: ".o_searchview_facet:contains(Pending)",
        },
    ],
});

/**
 * Notify an order from its form: the composer, the result, the chatter entry and the communication log.
 */
registry.category("web_tour.tours").add("payment_dunning_notify_tour", {
    steps: () => [
        {
            content: "Notify the customer",
            trigger: ".o_form_statusbar button.o_payment_order_notify:contains(Notify)",
            run: "click",
        },
        {
            content: "The composer shows the template written for this customer",
            trigger: ".modal .o_payment_order_notify .o_field_widget[name=body] textarea:value(Hola Tour Notify)",
        },
        {
            content: "Send",
            trigger: ".modal-footer button[name=action_send]",
            run: "click",
        },
        {
            content: "The result says it was sent",
            trigger: ".o_notification:contains(Notification sent)",
        },
        {
            content: "The chatter logs the WhatsApp message",
            trigger: ".o-mail-Message:contains(WhatsApp reminder sent to +51995955955)",
        },
        {
            content: "and the email",
            trigger: ".o-mail-Message:contains(Email reminder sent to pagos@tour.example.com)",
        },
        {
            content: "Open the order's communications",
            trigger: "a.nav-link:contains(Communications)",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=notification_ids] .o_data_row:contains(WhatsApp):contains(Sent)",
        },
    ],
});

function selectRow(text) {
    return {
        content: `Select ${text}`,
        trigger: `.o_data_row:contains(${text}) .o_list_record_selector input`,
        run: "click",
    };
}

/**
 * The list's bulk actions on selected rows (cancel two orders at once) and the row's Notify,
 * which opens the composer on that order.
 */
registry.category("web_tour.tours").add("payment_dunning_list_actions_tour", {
    steps: () => [
        {
            content: "Only the customer's orders",
            trigger: ".o_searchview_input",
            run: "edit Bulk Customer",
        },
        {
            trigger: ".o_searchview_autocomplete .o_menu_item:contains(Search Customer)",
            run: "click",
        },
        {
            trigger: ".o_searchview_facet:contains(Bulk Customer)",
        },
        selectRow("Bulk A"),
        selectRow("Bulk B"),
        {
            content: "Cancel the selected orders",
            trigger: "button.o_payment_order_bulk_cancel",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "Both are cancelled (grey)",
            trigger: ".o_data_row.text-muted:contains(Bulk A)",
        },
        {
            trigger: ".o_data_row.text-muted:contains(Bulk B)",
        },
        {
            content: "The third order is notified from its row",
            trigger: ".o_data_row:contains(Bulk C) button.o_payment_order_row_notify",
            run: "click",
        },
        {
            trigger: ".modal .o_payment_order_notify .o_field_widget[name=body] textarea:value(Hola Bulk Customer)",
        },
        {
            content: "Send",
            trigger: ".modal-footer button[name=action_send]",
            run: "click",
        },
        {
            content: "The result says it was sent",
            trigger: ".o_notification:contains(Notification sent)",
        },
        {
            content: "and the list counts the two messages",
            trigger: ".o_data_row:contains(Bulk C) .o_data_cell[name=notification_count]:contains(2)",
        },
    ],
});
