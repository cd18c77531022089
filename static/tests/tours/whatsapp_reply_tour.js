import { registry } from "@web/core/registry";

/**
 * The customer answered a reminder by WhatsApp: the collector finds the answer in the order's
 * chatter, replies by WhatsApp from the order, and sees the reply in the chatter
 * (TestWhatsappReplyTour checks what the gateway received).
 */
registry.category("web_tour.tours").add("payment_dunning_whatsapp_reply_tour", {
    steps: () => [
        {
            content: "The customer's answer is in the order's chatter",
            trigger: ".o-mail-Message:contains(Ya pagué, le mando el voucher)",
        },
        {
            content: "Reply by WhatsApp",
            trigger: ".o_form_view .o_form_statusbar button:contains(Reply by WhatsApp)",
            run: "click",
        },
        {
            content: "The composer shows what the customer wrote",
            trigger: ".modal .o_field_widget[name=last_message]:contains(Ya pagué)",
        },
        {
            trigger: ".modal .o_field_widget[name=body] textarea",
            run: "edit Gracias, lo revisamos hoy mismo.",
        },
        {
            trigger: ".modal button[name=action_send]",
            run: "click",
        },
        {
            content: "The reply is in the chatter",
            trigger: ".o-mail-Message:contains(Gracias, lo revisamos hoy mismo.)",
        },
    ],
});
