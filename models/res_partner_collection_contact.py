from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from .res_partner import SYNC_KEY, SYNC_SENTINEL, normalize_single_email

MAX_CONTACTS_PER_KIND = 5  # spec 5: up to five mobiles and five emails per customer
CONTACT_KINDS = [("mobile", "Mobile"), ("email", "Email")]


class ResPartnerCollectionContact(models.Model):
    """A mobile or an email where a customer's reminders can go: up to five of each per customer;
    the first of each kind is the customer's ``collection_whatsapp`` / ``collection_email``."""

    _name = "res.partner.collection.contact"
    _description = "Customer Collection Contact Point"
    _order = "partner_id, kind, sequence, id"
    _rec_name = "value"

    partner_id = fields.Many2one("res.partner", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="partner_id.company_id", store=True, index=True)
    kind = fields.Selection(CONTACT_KINDS, required=True, default="mobile")
    value = fields.Char(
        required=True,
        index=True,  # a WhatsApp reply finds its customer by the number
        help="A mobile in international format (E.164, e.g. +51995955955; a local number takes the "
        "country of the customer, else of the company) or one email address.",
    )
    sequence = fields.Integer(default=10, help="The first mobile and the first email are the defaults.")

    # ------------------------------------------------------------------ normalising

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._normalize_vals(vals, vals.get("partner_id"), vals.get("kind") or "mobile")
        contacts = super().create(vals_list)
        contacts.partner_id._refresh_default_contacts()
        return contacts

    def write(self, vals):
        partners_before = self.partner_id
        if isinstance(vals.get("value"), str) or "kind" in vals or "partner_id" in vals:
            for contact in self:
                contact_vals = dict(vals, value=vals.get("value", contact.value))
                contact._normalize_vals(
                    contact_vals,
                    contact_vals.get("partner_id", contact.partner_id.id),
                    contact_vals.get("kind", contact.kind),
                )
                super(ResPartnerCollectionContact, contact).write(contact_vals)
        else:
            super().write(vals)
        (partners_before | self.partner_id)._refresh_default_contacts()
        return True

    def unlink(self):
        partners = self.partner_id
        result = super().unlink()
        partners.exists()._refresh_default_contacts()
        return result

    @api.model
    def _normalize_vals(self, vals, partner_id, kind):
        if not isinstance(vals.get("value"), str):
            return
        partner = self.env["res.partner"].browse(partner_id)
        vals["value"] = self._normalize_value(kind, vals["value"], partner)

    @api.model
    def _normalize_value(self, kind, value, partner):
        """``value`` as stored: a mobile in E.164 read with the customer's (or company's) country,
        an email stripped and in lower case; a clear error otherwise."""
        value = (value or "").strip()
        if kind == "email":
            normalised = normalize_single_email(value)
            if not normalised:
                self.env["res.partner"]._raise_bad_collection_email(value, partner.display_name)
            return normalised
        country = self.env["res.partner"]._whatsapp_country(partner.country_id.id, partner.company_id.id)
        return self.env["res.partner"]._normalize_whatsapp(value, country)

    # ------------------------------------------------------------------ limits

    @api.constrains("partner_id", "kind", "value")
    def _check_contacts_per_customer(self):
        """At most five of each kind per customer, and each once: one grouped query for all."""
        groups = self._read_group(
            [("partner_id", "in", self.partner_id.ids)], ["partner_id", "kind"], ["__count", "value:array_agg"]
        )
        labels = dict(self._fields["kind"]._description_selection(self.env))
        for partner, kind, count, values in groups:
            if len(set(values)) < len(values):
                twice = sorted({value for value in values if values.count(value) > 1})
                raise ValidationError(
                    self.env._(
                        "%(customer)s already has %(value)s: each mobile and email is listed once.",
                        customer=partner.display_name,
                        value=", ".join(twice),
                    )
                )
            if count > MAX_CONTACTS_PER_KIND:
                raise ValidationError(
                    self.env._(
                        "%(customer)s has %(count)s contact points of kind %(kind)s: a customer has at most "
                        "%(max)s mobiles and %(max)s emails.",
                        customer=partner.display_name,
                        count=count,
                        kind=labels.get(kind, kind).lower(),
                        max=MAX_CONTACTS_PER_KIND,
                    )
                )

    # ------------------------------------------------------------------ import and migration

    @api.model
    def _replace_contacts(self, contacts_by_partner):
        """Set-based replacement for the import: ``{partner_id: {kind: [value, ...]}}`` (values already
        normalised, the first of each kind already written on the customer). The contact points of
        each given kind are replaced by the given list, in its order; other kinds are kept."""
        pairs = [(partner_id, kind) for partner_id, kinds in contacts_by_partner.items() for kind in kinds]
        if not pairs:
            return
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "SELECT c.id FROM res_partner_collection_contact c "
                "JOIN unnest(%s::int[], %s::varchar[]) AS p(partner_id, kind) "
                "ON c.partner_id = p.partner_id AND c.kind = p.kind",
                [pair[0] for pair in pairs],
                [pair[1] for pair in pairs],
            )
        )
        stale = self.browse([row[0] for row in self.env.cr.fetchall()])
        contacts = self.with_context(**{SYNC_KEY: SYNC_SENTINEL})
        super(ResPartnerCollectionContact, stale).unlink()
        vals_list = [
            {"partner_id": partner_id, "kind": kind, "value": value, "sequence": index}
            for partner_id, kinds in contacts_by_partner.items()
            for kind, values in kinds.items()
            for index, value in enumerate(values)
        ]
        if vals_list:
            # the values were normalised by the import: no partner is read back row by row
            super(ResPartnerCollectionContact, contacts).create(vals_list)

    def init(self):
        # Customers from before contact points had their two defaults on the customer itself.
        self.env.cr.execute(
            SQL(
                """
            INSERT INTO res_partner_collection_contact
                   (partner_id, company_id, kind, value, sequence, create_date, write_date)
            SELECT p.id, p.company_id, k.kind, k.value, 0, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
              FROM res_partner p
             CROSS JOIN LATERAL (VALUES ('mobile', p.collection_whatsapp), ('email', p.collection_email))
                   AS k(kind, value)
             WHERE k.value IS NOT NULL AND k.value != ''
               AND NOT EXISTS (SELECT 1 FROM res_partner_collection_contact c
                                WHERE c.partner_id = p.id AND c.kind = k.kind)
            """
            )
        )
        self._migrate_other_contacts()

    @api.model
    def _migrate_other_contacts(self):
        """Turn the old text of further contacts (``collection_other_contacts``, "a, b, c") into contact
        points; what cannot be read as a mobile or an email stays in the text, shown as notes."""
        self.env.cr.execute(
            SQL(
                "SELECT id FROM res_partner WHERE collection_other_contacts IS NOT NULL "
                "AND collection_other_contacts != ''"
            )
        )
        partner_ids = [row[0] for row in self.env.cr.fetchall()]
        for partner in self.env["res.partner"].sudo().browse(partner_ids):
            partner._move_other_contacts_to_points()
