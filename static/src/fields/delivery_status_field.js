import { Component } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

/**
 * A communication line's progress as WhatsApp shows it: a clock while queued, one tick sent,
 * two ticks delivered, two blue ticks read, a red mark failed (README, "WhatsApp both ways").
 */
export class DeliveryStatusField extends Component {
    static template = "payment_dunning.DeliveryStatusField";
    static props = { ...standardFieldProps };

    get status() {
        const data = this.props.record.data;
        if (data.state === "failed") {
            return { icon: "fa-exclamation-circle text-danger", label: _t("Failed"), double: false };
        }
        if (data.state === "cancelled") {
            return { icon: "fa-ban text-muted", label: _t("Cancelled"), double: false };
        }
        if (data.state === "queued" || data.state === "sending") {
            return { icon: "fa-clock-o text-muted", label: _t("Waiting to go out"), double: false };
        }
        if (data.delivery_status === "read") {
            return { icon: "fa-check text-info", label: _t("Read"), double: true };
        }
        if (data.delivery_status === "delivered") {
            return { icon: "fa-check text-muted", label: _t("Delivered"), double: true };
        }
        return { icon: "fa-check text-muted", label: _t("Sent"), double: false };
    }
}

export const deliveryStatusField = {
    component: DeliveryStatusField,
    displayName: _t("Delivery Status"),
    supportedTypes: ["selection"],
    fieldDependencies: [{ name: "state", type: "selection" }],
};

registry.category("fields").add("payment_dunning_delivery_status", deliveryStatusField);
