from datetime import timedelta

import pytz

from odoo import api, fields, models
from odoo.addons.base.models.res_partner import _tz_get
from odoo.exceptions import ValidationError

from ..tools import collection

# the sending window's weekdays, in the order of date.weekday() (Monday = 0)
WEEKDAY_FIELDS = (
    "dunning_send_mon",
    "dunning_send_tue",
    "dunning_send_wed",
    "dunning_send_thu",
    "dunning_send_fri",
    "dunning_send_sat",
    "dunning_send_sun",
)
# the company fields of the sending window and its timezone, as Settings edit them
WINDOW_FIELDS = ("collection_tz", "dunning_window_start", "dunning_window_end", *WEEKDAY_FIELDS)
# how far ahead the next opening of a window is looked for (holidays may close weeks)
OPENING_HORIZON_DAYS = 400


def check_sending_window(env, start, end, weekdays):
    """A ``ValidationError`` saying what is wrong with a sending window, if anything."""
    if not (0 <= start < 24 and 0 < end <= 24):
        raise ValidationError(env._("The sending window's hours must be between 00:00 and 24:00."))
    if start >= end:
        raise ValidationError(
            env._(
                "The sending window must start before it ends (from %(start)s to %(end)s).",
                start=_hhmm(start),
                end=_hhmm(end),
            )
        )
    if not any(weekdays):
        raise ValidationError(env._("Choose at least one weekday on which reminders are sent."))


def _hhmm(hour):
    hours, minutes = divmod(round(hour * 60), 60)
    return f"{hours:02d}:{minutes:02d}"


class ResCompany(models.Model):
    """The collections timezone and the sending window of each company (Settings)."""

    _inherit = "res.company"

    collection_tz = fields.Selection(
        _tz_get,
        string="Collections Timezone",
        compute="_compute_collection_tz",
        store=True,
        readonly=False,
        help="The company's day and hours for Collections: when an order is overdue, the hours of the daily "
        "jobs and the sending window. By default the timezone of the company's country.",
    )
    dunning_window_start = fields.Float(
        string="Send From",
        default=8.0,
        help="Automatic reminders go out from this hour (collections timezone). Notify and Retry send at once, "
        "whatever the hour.",
    )
    dunning_window_end = fields.Float(
        string="Send Until",
        default=20.0,
        help="Automatic reminders wait in the queue from this hour until the window opens again.",
    )
    dunning_send_mon = fields.Boolean(string="Monday", default=True)
    dunning_send_tue = fields.Boolean(string="Tuesday", default=True)
    dunning_send_wed = fields.Boolean(string="Wednesday", default=True)
    dunning_send_thu = fields.Boolean(string="Thursday", default=True)
    dunning_send_fri = fields.Boolean(string="Friday", default=True)
    dunning_send_sat = fields.Boolean(string="Saturday", default=True)
    dunning_send_sun = fields.Boolean(string="Sunday", default=False)
    dunning_holiday_ids = fields.One2many("payment.dunning.holiday", "company_id", string="Collection Holidays")
    payment_receipt_notify = fields.Boolean(
        string="Send Payment Receipts",
        default=True,
        help="Each registered payment sends the customer its receipt (Constancia de pago) by their channels.",
    )
    late_fee_active = fields.Boolean(
        string="Late Fees and Interest",
        help="Every day, overdue orders past the grace period get the late fee and the interest below, "
        "in their Charges and Interest.",
    )
    late_fee_grace_days = fields.Integer(
        string="Grace Period (days)", default=5, help="Days after the due date before any charge is added."
    )
    late_fee_fixed = fields.Monetary(
        string="Fixed Late Fee", currency_field="currency_id", help="Added once to an order when its grace period ends."
    )
    late_fee_monthly_rate = fields.Float(
        string="Monthly Interest (%)",
        digits=(5, 2),
        help="Interest per month on the overdue balance, added day by day (the monthly rate / 30 each day).",
    )
    late_fee_cap_percent = fields.Float(
        string="Cap (% of the amount)",
        digits=(5, 2),
        default=10.0,
        help="Charges and interest of an order never exceed this percentage of its amount (0: no cap).",
    )

    def _collection_online_payment_ready(self):
        """Whether customers can pay this company online: a published payment provider is enabled (or
        in test mode), so the pay-now link has somewhere to go."""
        self.ensure_one()
        return bool(
            self.env["payment.provider"]
            .sudo()
            .search_count(
                [("company_id", "=", self.id), ("state", "in", ("enabled", "test")), ("is_published", "=", True)],
                limit=1,
            )
        )

    def _late_fee_terms(self):
        """The late-fee terms of this company, as the job and its preview read them."""
        self.ensure_one()
        return {
            "grace_days": self.late_fee_grace_days,
            "fixed": self.late_fee_fixed,
            "monthly_rate": self.late_fee_monthly_rate,
            "cap_percent": self.late_fee_cap_percent,
        }

    @api.depends("country_id")
    def _compute_collection_tz(self):
        """Set once (then the user's choice): the partner's tz of an existing company, else its country's."""
        admin = self.env.ref("base.user_admin", raise_if_not_found=False)
        admin_tz = admin.sudo().tz if admin else False
        for company in self:
            if company.collection_tz:
                continue
            country_zones = pytz.country_timezones.get(company.country_id.code or "", [])
            company.collection_tz = company.partner_id.tz or (country_zones[:1] or [admin_tz or "UTC"])[0]

    @api.constrains("dunning_window_start", "dunning_window_end", *WEEKDAY_FIELDS)
    def _check_sending_window(self):
        for company in self:
            check_sending_window(
                self.env,
                company.dunning_window_start,
                company.dunning_window_end,
                [company[name] for name in WEEKDAY_FIELDS],
            )

    # ------------------------------------------------------------------ sending window

    def _dunning_window_openings(self, now):
        """{company id: ``now`` when its sending window is open, else its next opening (None: never)}.

        ``now`` is naive UTC; the window is read in each company's collections timezone.
        """
        holidays = self._dunning_holidays(now)
        return {company.id: company._dunning_window_opening(now, holidays[company.id]) for company in self}

    def _dunning_window_opening(self, now, holidays):
        self.ensure_one()
        weekdays = {index for index, name in enumerate(WEEKDAY_FIELDS) if self[name]}
        day = pytz.utc.localize(now).astimezone(collection.company_tz(self)).date()
        for _offset in range(OPENING_HORIZON_DAYS):
            if day.weekday() in weekdays and day not in holidays:
                opening = collection.local_time(self, self.dunning_window_start, day)
                closing = collection.local_time(self, self.dunning_window_end, day)
                if now < closing:
                    return max(now, opening)
            day += timedelta(days=1)
        return None

    def _dunning_holidays(self, now):
        """{company id: set of its holiday dates} from yesterday on (the earliest company's day)."""
        dates = {company.id: set() for company in self}
        holidays = (
            self.env["payment.dunning.holiday"]
            .sudo()
            .search_read(
                [("company_id", "in", self.ids), ("date", ">=", now.date() - timedelta(days=1))],
                ["company_id", "date"],
            )
        )
        for holiday in holidays:
            dates[holiday["company_id"][0]].add(holiday["date"])
        return dates
