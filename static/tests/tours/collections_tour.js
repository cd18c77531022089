import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_service/tour_utils";

/**
 * A day of collections: the dashboard, a new customer with WhatsApp, an order created and notified
 * at once, orange in the list, paid and green, and the dashboard counting it.
 */
registry.category("web_tour.tours").add("payment_dunning_collections_tour", {
    steps: () => [
        {
            content: "The dashboard is the landing screen: nothing paid yet",
            trigger: ".o_payment_dunning_dashboard .o_dashboard_state_paid:contains((0))",
        },
        {
            content: "Customers",
            trigger: ".o_main_navbar a[data-menu-xmlid='payment_dunning.menu_collection_customers']",
            run: "click",
        },
        {
            trigger: ".o_control_panel_main_buttons .o-kanban-button-new, .o_control_panel_main_buttons .o_list_button_add",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=name] input",
            run: "edit Cliente Tour",
        },
        {
            content: "The collection contact tab",
            trigger: "a.nav-link[name=collection_contact]",
            run: "click",
        },
        {
            content: "A Peruvian mobile without country code",
            trigger: ".o_field_widget[name=collection_whatsapp] input",
            run: "edit 995955955",
        },
        {
            trigger: ".o_field_widget[name=collection_email] input",
            run: "edit pagos@cliente-tour.example.com",
        },
        ...stepUtils.saveForm(),
        {
            content: "Stored in international format",
            trigger: ".o_field_widget[name=collection_whatsapp] input:value(+51995955955)",
        },
        {
            content: "Payment orders",
            trigger: ".o_main_navbar a[data-menu-xmlid='payment_dunning.menu_payment_order']",
            run: "click",
        },
        {
            content: "New Order dialog",
            trigger: ".o_control_panel_main_buttons .o_list_button_add",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name=partner_id] input",
            run: "edit Cliente Tour",
        },
        {
            trigger: ".ui-menu-item a:contains(Cliente Tour)",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name=due_date] input",
            run: "edit 12/31/2026",
        },
        {
            trigger: ".modal .o_field_widget[name=amount] input",
            run: "edit 89.90",
        },
        {
            trigger: ".modal .o_field_widget[name=concept] input",
            run: "edit Internet Hogar",
        },
        {
            content: "Create and notify",
            trigger: ".modal-footer button[name=action_create_and_notify]",
            run: "click",
        },
        {
            content: "The composer opens on the new order, by email and WhatsApp",
            trigger: ".modal .o_payment_order_notify .o_field_widget[name=body] textarea:value(Hola Cliente Tour)",
        },
        {
            trigger: ".modal .o_payment_order_notify .o_field_widget[name=channel_whatsapp] input:checked",
        },
        {
            trigger: ".modal-footer button[name=action_send]",
            run: "click",
        },
        {
            content: "Sent by email and WhatsApp",
            trigger: ".o_notification:contains(Notification sent)",
        },
        {
            content: "A pending order is orange",
            trigger: ".o_data_row.text-warning:contains(Cliente Tour)",
        },
        {
            trigger: ".o_data_row .o_data_cell[name=partner_id]:contains(Cliente Tour)",
            run: "click",
        },
        {
            trigger: ".o_form_statusbar button[name=action_pay]",
            run: "click",
        },
        {
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            trigger: ".ribbon:contains(Paid)",
        },
        {
            trigger: ".o_breadcrumb a:contains(Payment Orders)",
            run: "click",
        },
        {
            content: "A paid order is green",
            trigger: ".o_data_row.text-success:contains(Cliente Tour)",
        },
        {
            trigger: ".o_main_navbar a[data-menu-xmlid='payment_dunning.menu_collections_dashboard']",
            run: "click",
        },
        {
            content: "The dashboard counts the paid order",
            trigger: ".o_dashboard_state_paid:contains((1)):contains(89.90)",
        },
        {
            content: "and the two messages sent",
            trigger: ".o_dashboard_sent:contains(2)",
        },
    ],
});

/**
 * A Spanish-speaking collector sees the screens in Spanish.
 */
registry.category("web_tour.tours").add("payment_dunning_spanish_tour", {
    steps: () => [
        {
            content: "The dashboard in Spanish",
            trigger: ".o_payment_dunning_dashboard:contains(Saldo pendiente por días de atraso):contains(Vencen esta semana)",
        },
        {
            trigger: ".o_dashboard_state_pending:contains(Pendiente)",
        },
        {
            content: "The menus in Spanish",
            trigger: ".o_main_navbar a[data-menu-xmlid='payment_dunning.menu_payment_order']:contains(Órdenes de pago)",
            run: "click",
        },
        {
            content: "The totals panel in Spanish",
            trigger: ".o_payment_order_totals:contains(Vencida)",
        },
        {
            content: "New opens the New Order dialog",
            trigger: ".o_control_panel_main_buttons .o_list_button_add",
            run: "click",
        },
        {
            content: "whose link opens the full form, for orders of several lines",
            trigger: ".modal button[name=action_open_full_form]",
            run: "click",
        },
        {
            content: "The order form in Spanish",
            trigger: ".o_form_statusbar button.o_payment_order_notify:contains(Crear y notificar)",
        },
        {
            trigger: ".o_form_label:contains(Fecha de vencimiento)",
        },
    ],
});
