import { registry } from "@web/core/registry";

/**
 * A clerk registers a partial payment from the order form: 40.00 of 100.00, paid with Yape, with
 * its operation number; the receipt goes to the customer (TestPaymentReceiptUi checks what the
 * local SMTP server and WhatsApp gateway received) and the order shows what is left.
 */
registry.category("web_tour.tours").add("payment_dunning_receipt_tour", {
    steps: () => [
        {
            content: "Register a payment on the order",
            trigger: ".o_form_view .o_payment_order_register_payment",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name=amount] input",
            run: "edit 40",
        },
        {
            trigger: ".modal .o_field_widget[name=method_id] input",
            run: "edit Yape",
        },
        {
            trigger: ".ui-menu-item a:contains(Yape)",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name=reference] input",
            run: "edit OP-552211",
        },
        {
            trigger: ".modal button[name=action_register]",
            run: "click",
        },
        {
            content: "The receipt went to the customer",
            trigger: ".o_notification:contains(Payment registered):contains(Receipt)",
        },
        {
            content: "The order owes the rest",
            trigger: ".o_form_view .o_field_widget[name=balance]:contains(60.00)",
        },
        {
            trigger: ".o_form_view .o_notebook a:contains(Payments)",
            run: "click",
        },
        {
            trigger: ".o_form_view .o_field_widget[name=payment_ids] .o_data_row:contains(OP-552211)",
        },
    ],
});
