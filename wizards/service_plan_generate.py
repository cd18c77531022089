from odoo import api, fields, models
from odoo.exceptions import AccessError


class ServicePlanGenerate(models.TransientModel):
    """ "Generate now": shows what the scheduled job would bill today, then bills it."""

    _name = "service.plan.generate"
    _description = "Generate Payment Orders from Service Plans"

    plan_count = fields.Integer(string="Plans to Bill", readonly=True)
    order_count = fields.Integer(string="Orders to Create", readonly=True)
    customer_count = fields.Integer(string="Customers", readonly=True)
    days_before_due = fields.Integer(string="Days Before Due Date", readonly=True)

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        preview = self.env["service.plan"]._generation_preview(self.env.companies)
        params = self.env["ir.config_parameter"].sudo()
        values.update(
            plan_count=preview["plans"],
            order_count=preview["orders"],
            customer_count=preview["customers"],
            days_before_due=int(params.get_param("payment_dunning.days_before_due", 3) or 0),
        )
        return {name: value for name, value in values.items() if name in fields_list}

    def action_generate(self):
        if not self.env.user.has_group("payment_dunning.group_payment_dunning_manager"):
            raise AccessError(self.env._("Only collection managers can generate payment orders from plans."))
        orders = self.env["service.plan"]._generate_orders(self.env.companies)
        if not orders:
            return {
                "type": "ir.actions.client",
                "tag": "display_notification",
                "params": {
                    "type": "info",
                    "message": self.env._("No plan is due: no payment order was created."),
                    "next": {"type": "ir.actions.act_window_close"},
                },
            }
        action = self.env["ir.actions.act_window"]._for_xml_id("payment_dunning.action_payment_order")
        action.update(
            {
                "name": self.env._("Generated Payment Orders"),
                "display_name": self.env._("Generated Payment Orders"),
                "domain": [("id", "in", orders.ids)],
                "context": {"create": False},
                "target": "current",
            }
        )
        return action
