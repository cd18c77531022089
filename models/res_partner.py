import re

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL, consteq, email_normalize
from odoo.tools import hmac as tools_hmac

# the first mobile and the first email of a customer's contact points (res_partner_collection_contact.py)
DEFAULT_FIELDS = {"mobile": "collection_whatsapp", "email": "collection_email"}
# context key: the addon is keeping the default fields and the contact points in step; its value is
# an object no JSON-RPC or XML-RPC client can send (README, "Security")
SYNC_KEY = "payment_dunning_contact_sync"
SYNC_SENTINEL = object()
# only Revoke moves a customer's pay-now link version: set back, it would reopen a revoked link
LINK_KEY = "payment_dunning_link_revoke"
LINK_SENTINEL = object()
CONTACT_MODE_PARAM = "payment_dunning.contact_mode"

DOCUMENT_TYPES = [
    ("dni", "National ID (DNI)"),
    ("ruc", "Tax ID (RUC)"),
    ("ce", "Foreigner ID (CE)"),
    ("passport", "Passport"),
    ("other", "Other"),
]


def normalize_single_email(value):
    """``value`` stripped and in lower case when it is exactly one valid email address, else False.

    ``email_normalize`` alone keeps the last word of ``correo con espacio@example.com`` and the
    address of ``Name <a@b.com>``: an address is accepted only when normalising gives it back.
    """
    text = (value or "").strip() if isinstance(value, str) else ""
    normalised = email_normalize(text, strict=True)
    return normalised if normalised and normalised == text.lower() else False


class ResPartner(models.Model):
    _inherit = "res.partner"
    # customers are found by document number too (README, "Dunning rules": excluded customers by name or document)
    _rec_names_search = ["complete_name", "email", "ref", "vat", "company_registry", "document_number"]

    collection_link_version = fields.Integer(
        string="Pay-Now Link Version",
        copy=False,
        readonly=True,
        groups="payment_dunning.group_payment_dunning_manager",
        help='Signs the customer\'s pay-now link with the database secret (README, "Pay now"): revoking the '
        "link moves it on, and the links sent before stop opening.",
    )
    collection_contact_name = fields.Char(
        string="Collection Contact",
        help="Person who receives the payment reminders of this customer.",
    )
    collection_email = fields.Char(
        help="Where payment reminders are emailed; separate from the customer's main email.",
    )
    collection_whatsapp = fields.Char(
        string="WhatsApp Number",
        index="btree_not_null",  # a WhatsApp reply finds its customer by the number
        help="Stored in international format (E.164), e.g. +51995955955. A number without "
        "country code takes the country of the customer, else of the company.",
    )
    collection_other_contacts = fields.Char(
        string="Contact Notes",
        readonly=True,
        help="What an earlier import left in the customer's text of further contacts that is neither a "
        "mobile nor an email: the mobiles and emails it held are now in the list of contact points.",
    )
    collection_contact_ids = fields.One2many(
        "res.partner.collection.contact",
        "partner_id",
        string="Mobiles and Emails",
        groups="payment_dunning.group_payment_dunning_user",
        help="Up to five mobiles and five emails; the first of each is the default (WhatsApp Number, "
        "Collection Email).",
    )
    collection_message_count = fields.Integer(
        string="Communications",
        compute="_compute_collection_message_count",
        groups="payment_dunning.group_payment_dunning_user",
    )
    collection_payment_count = fields.Integer(
        string="Payments Received",
        compute="_compute_collection_payment_count",
        groups="payment_dunning.group_payment_dunning_user",
    )
    document_type = fields.Selection(DOCUMENT_TYPES, help="Kind of identification document.")
    document_number = fields.Char(
        index="btree_not_null",
        help="Identifies the customer in imports and integrations (never the name: "
        "two customers may share a name). Unique per company and document type.",
    )
    dunning_excluded = fields.Boolean(
        string="Excluded from Automatic Reminders",
        tracking=True,
        help="No automatic reminder or dunning message is sent to this customer. "
        "Manual notifications are still possible.",
    )
    dunning_opt_out_date = fields.Datetime(
        string="Opted Out On",
        readonly=True,
        copy=False,
        tracking=True,
        help="When the customer asked by WhatsApp for no more reminders (an opt-out keyword of Settings).",
    )
    dunning_opt_out_message = fields.Char(
        string="Opt-out Message",
        readonly=True,
        copy=False,
        help="The customer's message that opted them out.",
    )
    payment_order_ids = fields.One2many(
        "payment.order",
        "partner_id",
        string="Payment Orders",
        groups="payment_dunning.group_payment_dunning_user",
    )
    service_plan_ids = fields.One2many(
        "service.plan",
        "partner_id",
        string="Service Plans",
        groups="payment_dunning.group_payment_dunning_user",
    )
    payment_order_count = fields.Integer(
        compute="_compute_collection_totals", groups="payment_dunning.group_payment_dunning_user"
    )
    collection_currency_id = fields.Many2one(
        "res.currency",
        compute="_compute_collection_totals",
        groups="payment_dunning.group_payment_dunning_user",
    )
    collection_open_amount = fields.Monetary(
        string="Open Balance",
        currency_field="collection_currency_id",
        compute="_compute_collection_totals",
        groups="payment_dunning.group_payment_dunning_user",
        help="Outstanding balance of pending and overdue orders in the current company.",
    )
    collection_overdue_amount = fields.Monetary(
        string="Overdue Balance",
        currency_field="collection_currency_id",
        compute="_compute_collection_totals",
        groups="payment_dunning.group_payment_dunning_user",
        help="Outstanding balance of overdue orders in the current company.",
    )

    service_plan_count = fields.Integer(
        compute="_compute_collection_activity", groups="payment_dunning.group_payment_dunning_user"
    )
    collection_last_message = fields.Datetime(
        string="Last Reminder",
        compute="_compute_collection_activity",
        groups="payment_dunning.group_payment_dunning_user",
        help="When the last reminder reached this customer.",
    )
    collection_next_message = fields.Datetime(
        string="Next Queued Reminder",
        compute="_compute_collection_activity",
        groups="payment_dunning.group_payment_dunning_user",
        help="The earliest reminder waiting in the send queue for this customer.",
    )

    def init(self):
        # A partner shared by all companies (no company) conflicts with every company.
        self.env.cr.execute(
            SQL(
                """
            CREATE UNIQUE INDEX IF NOT EXISTS res_partner_document_company_uniq
                ON res_partner (COALESCE(company_id, 0), document_type, document_number)
             WHERE document_number IS NOT NULL
            """
            )
        )

    def _compute_collection_totals(self):
        company = self.env.company
        counts = dict.fromkeys(self.ids, 0)
        open_amounts = dict.fromkeys(self.ids, 0.0)
        overdue_amounts = dict.fromkeys(self.ids, 0.0)
        partners = self.filtered("id")
        if partners:
            groups = self.env["payment.order"]._read_group(
                [("partner_id", "in", partners.ids), ("company_id", "=", company.id)],
                ["partner_id", "state"],
                ["balance:sum", "__count"],
            )
            for partner, state, balance, count in groups:
                counts[partner.id] += count
                if state in ("pending", "overdue"):
                    open_amounts[partner.id] += balance
                if state == "overdue":
                    overdue_amounts[partner.id] += balance
        for partner in self:
            partner.collection_currency_id = company.currency_id
            partner.payment_order_count = counts.get(partner.id, 0)
            partner.collection_open_amount = open_amounts.get(partner.id, 0.0)
            partner.collection_overdue_amount = overdue_amounts.get(partner.id, 0.0)

    # ------------------------------------------------------------------ validation

    @api.constrains("collection_email")
    def _check_collection_email(self):
        for partner in self:
            if partner.collection_email and not normalize_single_email(partner.collection_email):
                partner._raise_bad_collection_email(partner.collection_email, partner.display_name)

    @api.model
    def _normalize_collection_email(self, vals, partner_name):
        """Store the collection email of ``vals`` stripped and in lower case; refuse anything but
        exactly one valid address (two addresses, a name and an address, words before it)."""
        email = vals.get("collection_email")
        if not isinstance(email, str):
            return
        if not email.strip():
            vals["collection_email"] = False
            return
        normalised = normalize_single_email(email)
        if not normalised:
            self._raise_bad_collection_email(email, partner_name)
        vals["collection_email"] = normalised

    @api.model
    def _raise_bad_collection_email(self, email, partner_name):
        raise ValidationError(
            self.env._(
                "The collection email %(email)s of %(partner)s is not a valid email address.",
                email=email,
                partner=partner_name or "",
            )
        )

    @api.model
    def _check_document_free(self, number, doc_type, company_id, exclude_ids=()):
        """Refuse a document type + number another customer of the company already has.

        Checked before writing, so the user gets this message rather than the unique index's.
        A partner without company is shared by all companies and clashes with each of them.
        """
        if not number:
            return
        domain = [
            ("document_number", "=", number),
            ("document_type", "=", doc_type),
            ("id", "not in", list(exclude_ids)),
        ]
        if company_id:
            domain.append(("company_id", "in", [company_id, False]))
        other = self.with_context(active_test=False).sudo().search(domain, limit=1)
        if other:
            label = dict(self._fields["document_type"]._description_selection(self.env)).get(doc_type)
            raise ValidationError(
                self.env._(
                    "The document %(type)s %(number)s is already used by %(other)s. "
                    "A document number identifies one customer per company.",
                    type=label or "",
                    number=number,
                    other=other.display_name,
                )
            )

    # ------------------------------------------------------------------ WhatsApp number

    @api.model_create_multi
    def create(self, vals_list):
        kinds_list = []
        for vals in vals_list:
            self._strip_document_number(vals)
            self._normalize_collection_email(vals, vals.get("name"))
            self._check_document_free(vals.get("document_number"), vals.get("document_type"), vals.get("company_id"))
            if vals.get("collection_whatsapp"):
                country = self._whatsapp_country(vals.get("country_id"), vals.get("company_id"))
                vals["collection_whatsapp"] = self._normalize_whatsapp(vals["collection_whatsapp"], country)
            kinds_list.append([kind for kind, field in DEFAULT_FIELDS.items() if vals.get(field)])
        if self.env.context.get(SYNC_KEY) is SYNC_SENTINEL:
            return super().create(vals_list)
        partners = (
            super(ResPartner, self.with_context(**{SYNC_KEY: SYNC_SENTINEL})).create(vals_list).with_env(self.env)
        )
        for partner, kinds in zip(partners, kinds_list, strict=True):
            # a kind the list of contact points given with the customer has decides its default
            missing = [kind for kind in kinds if not partner._contact_points(kind)]
            if missing:
                partner._sync_contacts_from_defaults(missing)
        given = [partner for partner, vals in zip(partners, vals_list, strict=True) if "collection_contact_ids" in vals]
        self.browse([partner.id for partner in given])._refresh_default_contacts()
        return partners

    def write(self, vals):
        if "collection_link_version" in vals and self.env.context.get(LINK_KEY) is not LINK_SENTINEL:
            raise UserError(self.env._("The pay-now link is changed by revoking it, on the customer's form."))
        self._check_opt_out_write(vals)
        syncing = self.env.context.get(SYNC_KEY) is SYNC_SENTINEL
        vals = self._checked_collection_vals(vals)
        partners = self if syncing else self.with_context(**{SYNC_KEY: SYNC_SENTINEL})
        if vals.get("collection_whatsapp"):
            # the country of each partner decides how a local number is read
            for partner in partners:
                number = partner._normalize_whatsapp(vals["collection_whatsapp"], partner._whatsapp_country_for(vals))
                super(ResPartner, partner).write(dict(vals, collection_whatsapp=number))
            result = True
        else:
            result = super(ResPartner, partners).write(vals)
        if not syncing:
            kinds = [kind for kind, field in DEFAULT_FIELDS.items() if field in vals]
            if kinds:
                self._sync_contacts_from_defaults(kinds)
            if kinds or "collection_contact_ids" in vals:
                self._refresh_default_contacts()
        return result

    # ------------------------------------------------------------------ opt-out

    def _check_opt_out_write(self, vals):
        """The customer's own opt-out is theirs: only a Collections manager lifts it (Allow reminders
        again), and nobody writes its date or message by hand."""
        if self.env.su:
            return
        if {"dunning_opt_out_date", "dunning_opt_out_message"} & set(vals):
            raise UserError(self.env._("An opt-out is recorded from the customer's own WhatsApp message only."))
        if "dunning_excluded" in vals and not vals["dunning_excluded"] and any(self.mapped("dunning_opt_out_date")):
            if not self.env.user.has_group("payment_dunning.group_payment_dunning_manager"):
                raise UserError(
                    self.env._(
                        "The customer asked for no more reminders: only a Collections manager can allow them again."
                    )
                )

    def _collection_opt_out(self, event):
        """The customer wrote an opt-out keyword: no more automatic reminders, and those queued are
        cancelled. Recorded with the date and the message, in the chatter."""
        self.ensure_one()
        partner = self.sudo()
        if partner.dunning_opt_out_date:
            return
        partner.write(
            {
                "dunning_excluded": True,
                "dunning_opt_out_date": fields.Datetime.now(),
                "dunning_opt_out_message": (event.text or "")[:255],
            }
        )
        partner.message_post(
            body=self.env._(
                'Opted out of automatic reminders by WhatsApp (%(number)s): "%(text)s"',
                number=event.number,
                text=event.text,
            ),
            message_type="notification",
            subtype_xmlid="mail.mt_note",
        )
        self.env["payment.order.notification"]._cancel_automatic_of(partner, self.env._("The customer opted out."))

    def action_collection_opt_in(self):
        """A Collections manager allows automatic reminders again after an opt-out."""
        if not self.env.user.has_group("payment_dunning.group_payment_dunning_manager"):
            raise UserError(self.env._("Only a Collections manager can allow reminders again."))
        for partner in self.filtered("dunning_opt_out_date"):
            partner.sudo().write(
                {"dunning_excluded": False, "dunning_opt_out_date": False, "dunning_opt_out_message": False}
            )
            # a manager lifts it without the right to edit contacts: as superuser, signed as the manager
            partner.sudo().message_post(
                author_id=self.env.user.partner_id.id,
                body=self.env._("Automatic reminders allowed again by %s.", self.env.user.name),
                message_type="notification",
                subtype_xmlid="mail.mt_note",
            )
        return True

    def _checked_collection_vals(self, vals):
        """``vals`` with the collection email normalised and the document number stripped and free."""
        self._strip_document_number(vals)
        if isinstance(vals.get("collection_email"), str):
            vals = dict(vals)
            self._normalize_collection_email(vals, ", ".join(self[:3].mapped("display_name")))
        if {"document_number", "document_type", "company_id"} & set(vals):
            for partner in self:
                partner._check_document_free(
                    vals.get("document_number", partner.document_number),
                    vals.get("document_type", partner.document_type),
                    vals.get("company_id", partner.company_id.id),
                    exclude_ids=partner.ids,
                )
        return vals

    def _whatsapp_country_for(self, vals):
        return self._whatsapp_country(
            vals.get("country_id", self.country_id.id), vals.get("company_id", self.company_id.id)
        )

    @api.model
    def _strip_document_number(self, vals):
        if isinstance(vals.get("document_number"), str):
            vals["document_number"] = vals["document_number"].strip() or False

    @api.model
    def _whatsapp_country(self, country_id, company_id):
        if country_id:
            return self.env["res.country"].browse(country_id)
        company = self.env["res.company"].browse(company_id) if company_id else self.env.company
        return company.country_id

    @api.model
    def _normalize_whatsapp(self, number, country):
        """Return the number in E.164 (``+51995955955``) or raise a clear error."""
        number = number.strip()
        try:
            formatted = self._phone_format(number=number, country=country, force_format="E164", raise_exception=True)
        except UserError as error:
            raise ValidationError(
                self.env._(
                    "The WhatsApp number %(number)s is not valid: %(reason)s. Write it with its "
                    "country code, e.g. +51995955955.",
                    number=number,
                    reason=str(error.args[0]).rstrip(". "),
                )
            ) from error
        if not formatted:
            raise ValidationError(
                self.env._(
                    "The WhatsApp number %s is not valid. Write it with its country code, e.g. +51995955955.",
                    number,
                )
            )
        return formatted

    @api.onchange("collection_whatsapp", "country_id")
    def _onchange_collection_whatsapp(self):
        if self.collection_whatsapp:
            country = self.country_id or self.company_id.country_id or self.env.company.country_id
            formatted = self._phone_format(number=self.collection_whatsapp, country=country, force_format="E164")
            if formatted:
                self.collection_whatsapp = formatted

    # ------------------------------------------------------------------ contact points

    def _contact_points(self, kind):
        """The customer's contact points of ``kind`` ("mobile" or "email"), the default first."""
        self.ensure_one()
        return (
            self.env["res.partner.collection.contact"]
            .sudo()
            .search([("partner_id", "=", self.id), ("kind", "=", kind)], order="sequence, id")
        )

    def _sync_contacts_from_defaults(self, kinds):
        """After ``collection_whatsapp`` / ``collection_email`` were written: the written value becomes
        the first contact point of its kind. It replaces the old first one (or moves up when it is
        already further down the list); a cleared value removes the first one, the next becoming
        the default. Done with superuser rights: it keeps the customer's own data consistent."""
        contacts = self.env["res.partner.collection.contact"].sudo().with_context(**{SYNC_KEY: SYNC_SENTINEL})
        for partner in self.sudo():
            for kind in kinds:
                value = partner[DEFAULT_FIELDS[kind]]
                points = partner._contact_points(kind).with_context(**{SYNC_KEY: SYNC_SENTINEL})
                first = points[:1]
                if first.value == value:
                    continue
                if not value:
                    first.unlink()
                elif value in points.mapped("value"):
                    points.filtered(lambda point, value=value: point.value == value).sequence = first.sequence - 1
                elif first:
                    first.value = value
                else:
                    contacts.create({"partner_id": partner.id, "kind": kind, "value": value, "sequence": 0})

    def _refresh_default_contacts(self):
        """Write the first mobile and email of the contact points on the customer (its defaults)."""
        if self.env.context.get(SYNC_KEY) is SYNC_SENTINEL or not self.ids:
            return
        self.env.flush_all()
        firsts = {}
        for point in (
            self.env["res.partner.collection.contact"]
            .sudo()
            .search([("partner_id", "in", self.ids)], order="partner_id, kind, sequence, id")
        ):
            firsts.setdefault((point.partner_id.id, point.kind), point.value)
        for partner in self.sudo().with_context(**{SYNC_KEY: SYNC_SENTINEL}):
            values = {
                field: firsts.get((partner.id, kind), False)
                for kind, field in DEFAULT_FIELDS.items()
                if (partner[field] or False) != firsts.get((partner.id, kind), False)
            }
            if values:
                partner.write(values)

    def _collection_recipients(self, channel):
        """Where a message of ``channel`` ("email" or "whatsapp") goes: the first email or mobile of
        the customer, or all of them when the setting ``payment_dunning.contact_mode`` is "all"."""
        self.ensure_one()
        kind = "email" if channel == "email" else "mobile"
        mode = self.env["ir.config_parameter"].sudo().get_param(CONTACT_MODE_PARAM) or "first"
        values = self._contact_points(kind).mapped("value")
        default = self.sudo()[DEFAULT_FIELDS[kind]]
        if default and default not in values:  # a customer from before contact points
            values.insert(0, default)
        return values if mode == "all" else values[:1]

    def _move_other_contacts_to_points(self):
        """The old free text of further contacts as contact points, up to five of each kind; what is
        neither a mobile nor an email (or is past five) stays in the text, read as notes."""
        contacts = self.env["res.partner.collection.contact"].sudo()
        for partner in self.sudo():
            taken = {kind: partner._contact_points(kind).mapped("value") for kind in DEFAULT_FIELDS}
            kept, new = [], []
            for token in re.split(r"[,;\s]+", partner.collection_other_contacts or ""):
                if not token:
                    continue
                kind, value = partner._parse_contact_token(token)
                if not value or len(taken[kind]) >= 5:
                    kept.append(token)
                elif value not in taken[kind]:
                    taken[kind].append(value)
                    new.append({"partner_id": partner.id, "kind": kind, "value": value, "sequence": len(taken[kind])})
            contacts.create(new)
            partner.with_context(**{SYNC_KEY: SYNC_SENTINEL}).collection_other_contacts = " ".join(kept) or False
        self._refresh_default_contacts()

    def _parse_contact_token(self, token):
        """("email" or "mobile", normalised value or False) of one word of the old contacts text."""
        if "@" in token:
            return "email", normalize_single_email(token)
        try:
            return "mobile", self.env["res.partner.collection.contact"]._normalize_value("mobile", token, self)
        except ValidationError:
            return "mobile", False

    def _compute_collection_message_count(self):
        """Messages of the customer and its contacts, as the Communications button lists them: one
        grouped query."""
        commercial = self.filtered("id").commercial_partner_id
        counts = {}
        if commercial:
            groups = self.env["payment.order.notification"]._read_group(
                [("partner_id", "child_of", commercial.ids)], ["partner_id"], ["__count"]
            )
            for partner, count in groups:
                key = partner.commercial_partner_id.id
                counts[key] = counts.get(key, 0) + count
        for partner in self:
            partner.collection_message_count = counts.get(partner.commercial_partner_id.id, 0)

    def _compute_collection_payment_count(self):
        """Payments registered on the orders of the customer and its contacts (README, "Payments")."""
        commercial = self.filtered("id").commercial_partner_id
        counts = {}
        if commercial:
            groups = self.env["payment.order.payment"]._read_group(
                [("partner_id", "child_of", commercial.ids), ("state", "=", "posted")], ["partner_id"], ["__count"]
            )
            for partner, count in groups:
                key = partner.commercial_partner_id.id
                counts[key] = counts.get(key, 0) + count
        for partner in self:
            partner.collection_payment_count = counts.get(partner.commercial_partner_id.id, 0)

    # ------------------------------------------------------------------ actions

    def _compute_collection_activity(self):
        partners = self.filtered("id")
        plans, last, queued = {}, {}, {}
        if partners:
            plans = dict(
                self.env["service.plan"]._read_group([("partner_id", "in", partners.ids)], ["partner_id"], ["__count"])
            )
            notifications = self.env["payment.order.notification"]
            last = dict(
                notifications._read_group(
                    [("partner_id", "in", partners.ids), ("state", "=", "sent")], ["partner_id"], ["sent_at:max"]
                )
            )
            queued = dict(
                notifications._read_group(
                    [("partner_id", "in", partners.ids), ("state", "=", "queued")], ["partner_id"], ["create_date:min"]
                )
            )
        for partner in self:
            partner.service_plan_count = plans.get(partner, 0)
            partner.collection_last_message = last.get(partner, False)
            partner.collection_next_message = queued.get(partner, False)

    def action_view_service_plans(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("payment_dunning.action_service_plan")
        action["domain"] = [("partner_id", "child_of", self.commercial_partner_id.id)]
        action["context"] = {"default_partner_id": self.commercial_partner_id.id}
        return action

    def action_print_statement(self):
        self.ensure_one()
        return self.env.ref("payment_dunning.action_report_account_statement").report_action(self)

    def action_view_payment_orders(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("payment_dunning.action_payment_order")
        action["domain"] = [("partner_id", "child_of", self.commercial_partner_id.id)]
        action["context"] = {"default_partner_id": self.commercial_partner_id.id}
        return action

    def action_view_collection_payments(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("payment_dunning.action_payment_order_payment")
        action["domain"] = [("partner_id", "child_of", self.commercial_partner_id.id)]
        action["context"] = {}
        return action

    def action_view_communications(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("payment_dunning.action_payment_order_notification")
        action["domain"] = [("partner_id", "child_of", self.commercial_partner_id.id)]
        return action

    def _collection_pay_url(self, company=None):
        """The signed link to the customer's pay-now page (README, "Pay now"); empty when the company has
        no online payment provider enabled."""
        self.ensure_one()
        company = company or self.env.company
        if not company._collection_online_payment_ready():
            return ""
        partner = self.commercial_partner_id
        token = partner._collection_access_token(company)
        return f"{partner.get_base_url()}/collections/pay/{partner.id}?company_id={company.id}&access_token={token}"

    def _collection_access_token(self, company):
        """The customer's pay-now access token for their orders in ``company``: an HMAC of the customer,
        the company and the link version with the database secret, as Odoo signs its payment links.
        A link opens one company's orders only. Rendering it writes nothing, so two workers sending to
        one customer at once never collide, and every message carries the same link."""
        self.ensure_one()
        version = self.sudo().collection_link_version or 0
        return tools_hmac(self.env(su=True), "payment_dunning.pay_now", f"{self.id}:{company.id}:{version}")

    def _collection_check_token(self, token, company):
        """Whether ``token`` opens this customer's pay-now page of ``company`` (constant-time comparison)."""
        self.ensure_one()
        return bool(token and isinstance(token, str) and consteq(self._collection_access_token(company), token))

    def action_open_collection_pay_page(self):
        """What the customer sees when they open their pay-now link (to check it, or copy the link)."""
        self.ensure_one()
        self.check_access("read")
        if not self.env.user.has_group("payment_dunning.group_payment_dunning_user"):
            raise AccessError(self.env._("Only Collections users can open a customer's pay-now page."))
        partner = self.commercial_partner_id
        company = self.env.company
        token = partner._collection_access_token(company)
        return {
            "type": "ir.actions.act_url",
            "url": f"/collections/pay/{partner.id}?company_id={company.id}&access_token={token}",
            "target": "new",
        }

    def action_revoke_collection_link(self):
        """A leaked pay-now link stops working; the next message carries a new one."""
        if not self.env.user.has_group("payment_dunning.group_payment_dunning_manager"):
            raise AccessError(self.env._("Only a Collections Manager can revoke a pay-now link."))
        self.check_access("write")
        for partner in self.commercial_partner_id:
            partner.sudo().with_context(**{LINK_KEY: LINK_SENTINEL}).collection_link_version += 1
            partner.message_post(
                body=self.env._("The pay-now link was revoked: the links already sent no longer open.")
            )
        return True

    def _collection_portal_orders(self, company):
        """What the pay-now page lists: the customer's open orders with a balance in that company,
        oldest due first."""
        self.ensure_one()
        return (
            self.env["payment.order"]
            .sudo()
            .search(
                [
                    ("partner_id", "child_of", self.commercial_partner_id.id),
                    ("company_id", "=", company.id),
                    ("state", "in", ["pending", "overdue"]),
                    ("balance", ">", 0),
                ],
                order="due_date, id",
            )
        )

    def _statement_orders(self):
        """Open orders with a balance of the customer, oldest due first: the account statement.

        Only the orders of the allowed companies (``self.env.companies``): the send queue renders a
        message's statement with superuser rights and its company as the only allowed one.
        """
        self.ensure_one()
        return self.env["payment.order"].search(
            [
                ("partner_id", "child_of", self.commercial_partner_id.id),
                ("company_id", "in", self.env.companies.ids),
                ("state", "in", ["pending", "overdue"]),
                ("balance", ">", 0),
            ],
            order="due_date, id",
        )

    def _statement_totals(self, orders):
        """Outstanding and overdue balance per currency, formatted."""
        totals = []
        for currency, currency_orders in orders.grouped("currency_id").items():
            overdue = currency_orders.filtered(lambda order: order.state == "overdue")
            totals.append(
                {
                    "balance": currency.format(sum(currency_orders.mapped("balance"))),
                    "overdue": currency.format(sum(overdue.mapped("balance"))),
                }
            )
        return totals
