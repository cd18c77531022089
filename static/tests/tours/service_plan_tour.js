import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_service/tour_utils";

function createPlan(name, amount, extraSteps = [], savedSteps = []) {
    return [
        {
            content: `New plan: ${name}`,
            trigger: ".o_control_panel_main_buttons .o_list_button_add",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=name] input",
            run: `edit ${name}`,
        },
        {
            trigger: ".o_field_widget[name=partner_id] input",
            run: "edit Tour Plan Customer",
        },
        {
            trigger: ".ui-menu-item a:contains(Tour Plan Customer)",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=amount] input",
            run: `edit ${amount}`,
        },
        ...extraSteps,
        ...stepUtils.saveForm(),
        ...savedSteps,
        {
            content: "Back to the plans",
            trigger: ".o_breadcrumb a:contains(Service Plans)",
            run: "click",
        },
    ];
}

/**
 * A collections manager gives a customer an Internet plan and a router in 4 installments,
 * then bills them with "Generate now" and finds one order with both lines.
 */
registry.category("web_tour.tours").add("payment_dunning_plan_tour", {
    url: "/odoo/action-payment_dunning.action_service_plan",
    steps: () => [
        ...createPlan("Internet 100 Mbps", "89.90"),
        ...createPlan("Router Wi-Fi 6", "60", [
            {
                content: "Paid in installments",
                trigger: ".o_field_widget[name=payment_mode] input[data-value=installments]",
                run: "click",
            },
            {
                trigger: ".o_field_widget[name=installments] input",
                run: "edit 4",
            },
            {
                content: "The total to collect, split into the 4 installments",
                trigger: ".o_field_widget[name=total_amount] input",
                run: "edit 240",
            },
            {
                content: "What each installment bills is shown",
                trigger: ".o_field_widget[name=installment_note]:contains(4 installments of)",
            },
        ], [
            {
                content: "Each installment is a quarter of the total",
                trigger: ".o_field_widget[name=amount]:contains(60.00)",
            },
        ]),
        {
            content: "Both plans are listed",
            trigger: ".o_data_row:contains(Router Wi-Fi 6):contains(To Collect)",
        },
        {
            content: "Generate now",
            trigger: ".o_control_panel button:contains(Generate Now)",
            run: "click",
        },
        {
            content: "The preview counts one order for the customer's two plans",
            trigger: ".modal .o_field_widget[name=order_count]:contains(1)",
        },
        {
            trigger: ".modal .o_field_widget[name=plan_count]:contains(2)",
        },
        {
            trigger: ".modal-footer button[name=action_generate]",
            run: "click",
        },
        {
            content: "The generated orders are shown",
            trigger: ".o_breadcrumb:contains(Generated Payment Orders)",
        },
        {
            content: "One order bills both plans",
            trigger: ".o_data_row .o_data_cell[name=concept]:contains(Internet 100 Mbps, Router Wi-Fi 6)",
            run: "click",
        },
        {
            content: "It bills both plans",
            trigger: ".o_field_widget[name=line_ids] .o_data_row:contains(installment 1 of 4)",
        },
        {
            trigger: ".o_field_widget[name=line_ids] .o_data_row:contains(Internet 100 Mbps)",
        },
    ],
});
