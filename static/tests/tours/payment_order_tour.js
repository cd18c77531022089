import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_service/tour_utils";

/**
 * A collections user creates an order, pays it, finds it by customer and sees the totals panel.
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
            content: "Create an order",
            trigger: ".o_control_panel_main_buttons .o_list_button_add",
            run: "click",
        },
        {
            content: "Pick the customer",
            trigger: ".o_field_widget[name=partner_id] input",
            run: "edit Tour Customer",
        },
        {
            trigger: ".ui-menu-item a:contains(Tour Customer)",
            run: "click",
        },
        {
            content: "Concept",
            trigger: ".o_field_widget[name=concept] input",
            run: "edit Fiber 500 Mbps",
        },
        {
            content: "Due date",
            trigger: ".o_field_widget[name=due_date] input",
            run: "edit 12/31/2026",
        },
        {
            content: "Add the amount as a line",
            trigger: ".o_field_widget[name=line_ids] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=line_ids] .o_selected_row .o_field_widget[name=name] input",
            run: "edit Fiber 500 Mbps",
        },
        {
            trigger: ".o_field_widget[name=line_ids] .o_selected_row .o_field_widget[name=amount] input",
            run: "edit 123.45",
        },
        ...stepUtils.saveForm(),
        {
            content: "Saved orders are pending",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains(Pending)",
        },
        {
            content: "Pay it",
            trigger: ".o_form_statusbar button[name=action_pay]",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "It is paid",
            trigger: ".ribbon:contains(Paid)",
        },
        {
            content: "Back to the list",
            trigger: ".o_breadcrumb a:contains(Payment Orders)",
            run: "click",
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
 * Notify an order from its form: the result, the chatter entry and the communication log.
 */
registry.category("web_tour.tours").add("payment_dunning_notify_tour", {
    steps: () => [
        {
            content: "Notify the customer",
            trigger: ".o_form_statusbar button[name=action_notify]:contains(Notify)",
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
