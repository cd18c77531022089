import os

import polib

from odoo.modules.module import get_module_path
from odoo.tests import TransactionCase, tagged
from odoo.tools.translate import TranslationModuleReader


@tagged("post_install", "-at_install")
class TestSpanishTranslation(TransactionCase):
    """Every term the module shows (fields, selections, views, errors) has its Spanish text."""

    def test_every_term_is_translated_to_spanish(self):
        reader = TranslationModuleReader(self.env.cr, modules=["payment_dunning"], lang="en_US")
        terms = {source for _module, _type, _name, _res_id, source, _value, _comments in reader if source}
        self.assertGreater(len(terms), 50, "the export found the module's terms")
        po_path = os.path.join(get_module_path("payment_dunning"), "i18n", "es.po")
        translated = {entry.msgid for entry in polib.pofile(po_path) if entry.msgstr and not entry.fuzzy}
        missing = sorted(terms - translated)
        self.assertFalse(missing, f"{len(missing)} terms lack a Spanish translation in i18n/es.po: {missing[:20]}")

    def test_spanish_user_sees_spanish_labels(self):
        self.env["res.lang"]._activate_lang("es_ES")
        self.env["ir.module.module"].search([("name", "=", "payment_dunning")])._update_translations(["es_ES"])
        Order = self.env["payment.order"].with_context(lang="es_ES")
        states = dict(Order._fields["state"]._description_selection(Order.env))
        self.assertEqual(states["overdue"], "Vencida")
        self.assertEqual(states["cancelled"], "Anulada")
        self.assertEqual(Order.env["ir.model"]._get("payment.order").name, "Orden de pago")
