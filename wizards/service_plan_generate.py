from odoo import api, fields, models
from odoo.exceptions import AccessError


class ServicePlanGenerate(models.TransientModel):
    """ "Generate now": shows what the scheduled job would bill today, then bills it."""

    _name = "service.plan.generate"
    _description = "Generate Payment Orders from Service Plans"

    plan_count = fields.Integer(string="Plans to Bill", compute="_compute_preview")
    order_count = fields.Integer(string="Orders to Create", compute="_compute_preview")
    customer_count = fields.Integer(string="Customers", compute="_compute_preview")
    days_before_due = fields.Integer(string="Days Before Due Date", compute="_compute_preview")

    @api.depends_context("allowed_company_ids")
    def _compute_preview(self):
        preview = self.env["service.plan"]._generation_preview(self.env.companies)
        days = int(self.env["ir.config_parameter"].sudo().get_param("payment_dunning.days_before_due", 3) or 0)
        for wizard in self:
            wizard.plan_count = preview["plans"]
            wizard.order_count = preview["orders"]
            wizard.customer_count = preview["customers"]
            wizard.days_before_due = days

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
                "domain": [("id", "in", orders.ids)],
                "context": {"create": False},
                "target": "current",
            }
        )
        return action
