from odoo import api, models


class PaymentDunningSettings(models.TransientModel):
    """The Collections settings for Collections Managers who are not Odoo administrators.

    Odoo's Settings (``res.config.settings``) are for administrators only. This screen edits the
    module's own settings (``DUNNING_PARAMS``: automatic tasks, notifications, generation and dunning
    run schedule, batch size, invoice orders, gateway, recipients, message template; and the
    company's collections timezone and sending window) with the same fields, defaults and checks;
    the security-sensitive ones (outbound allowlist, mail server) stay in Settings.
    """

    _name = "payment.dunning.settings"
    _inherit = "payment.dunning.settings.mixin"
    _description = "Collections Settings"

    @api.model
    def default_get(self, fields_list):
        self._check_dunning_manager()
        values = super().default_get(fields_list)
        stored = self._dunning_get_params() | self._dunning_get_company_values(self.env.company)
        values.update({name: value for name, value in stored.items() if name in fields_list})
        return values

    @api.model_create_multi
    def create(self, vals_list):
        self._check_dunning_manager()
        return super().create(vals_list)

    def action_save(self):
        self.ensure_one()
        self._check_dunning_manager()
        self._dunning_set_params()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._("The Collections settings are saved."),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
