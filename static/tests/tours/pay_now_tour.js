import { registry } from "@web/core/registry";

/**
 * The customer opens the pay-now link of their WhatsApp reminder, without an account: they see their
 * open orders, pay the whole balance with the demo provider, and land back on the page, which thanks
 * them with the receipt numbers and shows nothing left to pay (TestPayNowTour checks the orders, the
 * payments and the receipts sent).
 */
registry.category("web_tour.tours").add("payment_dunning_pay_now_tour", {
    steps: () => [
        {
            content: "The open orders and the balance due",
            trigger: ".o_collections_orders .o_collections_order:nth-child(2)",
        },
        {
            trigger: ".o_collections_total:contains(320.00)",
        },
        {
            content: "Pay with the demo provider",
            trigger: 'input[name="o_payment_radio"][data-payment-method-code="demo"]',
            run: "click",
        },
        {
            trigger: 'input[name="customer_input"]',
            run: "edit 4242424242424242",
        },
        {
            trigger: 'button[name="o_payment_submit_button"]:visible:not(:disabled)',
            run: "click",
        },
        {
            content: "Back on the page: thanked, with the receipts, and nothing left to pay",
            trigger: ".o_collections_tx_done:contains(REC/)",
        },
        {
            trigger: ".o_collections_nothing_due",
        },
    ],
});
