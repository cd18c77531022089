"""What the collection jobs share: open states, each company's "today", batches, commits and
retries (README, "Scheduled jobs")."""

import threading
from datetime import datetime, time, timedelta

import psycopg2
import pytz

from odoo.tools import SQL, mute_logger

OPEN_STATES = ("pending", "overdue")
CLOSED_STATES = ("paid", "cancelled")
DEFAULT_BATCH_SIZE = 200
MAX_BATCH_SIZE = 10000
SERIALIZATION_ATTEMPTS = 10


def company_tz(company):
    """The collections timezone of the company (Settings), else its partner's, else UTC."""
    tz_name = company.collection_tz or company.partner_id.tz or "UTC"
    try:
        return pytz.timezone(tz_name)
    except pytz.UnknownTimeZoneError:
        return pytz.utc


def company_today(company):
    """Today's date in the collections timezone of the company, not the server's.

    A customer in Lima is not overdue at 19:00 local time just because UTC has passed midnight.
    """
    return datetime.now(company_tz(company)).date()


def local_time(company, hour, day):
    """``hour`` (a float of Settings, 9.5 = 09:30; 24 = the next midnight) of ``day`` in the company's
    timezone, as a naive UTC datetime."""
    tz = company_tz(company)
    minutes = min(max(round(hour * 60), 0), 24 * 60)
    moment = datetime.combine(day, time(0)) + timedelta(minutes=minutes)
    # a wall-clock time skipped or doubled by a DST change is taken as the standard time
    return tz.localize(moment, is_dst=False).astimezone(pytz.utc).replace(tzinfo=None)


def next_local_time(company, hour, now):
    """The first moment after ``now`` (naive UTC) at ``hour`` of the company's day."""
    day = pytz.utc.localize(now).astimezone(company_tz(company)).date()
    while True:
        moment = local_time(company, hour, day)
        if moment > now:
            return moment
        day += timedelta(days=1)


def company_days(companies, shift=None):
    """{company id: its today (plus ``shift``, a timedelta or relativedelta)}."""
    return {company.id: company_today(company) + shift if shift else company_today(company) for company in companies}


def company_days_values(days):
    """``days`` ({company id: date}) as the rows of ``(VALUES …) AS c(company_id, today)``."""
    return SQL(", ").join(SQL("(%s, %s::date)", company_id, day) for company_id, day in days.items())


def company_sequence(env, company, code, name, prefix):
    """The ``ir.sequence`` of ``code`` of the company, made with the company's first record.

    Two first records at once must not make two sequences that both start at 1. Locking the
    company's row is not enough: the second would then search in its snapshot, taken before the
    first committed, and miss its sequence. Writing the row makes the second fail to serialize
    instead, and Odoo replays its request (a job retries), on a snapshot that has the sequence.
    """
    sequences = env["ir.sequence"].sudo()
    domain = [("code", "=", code), ("company_id", "=", company.id)]
    sequence = sequences.search(domain, limit=1)
    if not sequence:
        with mute_logger("odoo.sql_db"):  # the second's failure is expected, and replayed
            env.cr.execute(SQL("UPDATE res_company SET write_date = write_date WHERE id = %s", company.id))
        sequence = sequences.search(domain, limit=1) or sequences.create(
            {"name": name, "code": code, "company_id": company.id, "prefix": prefix, "padding": 5}
        )
    return sequence


def open_state_sql(alias="o"):
    """The SQL condition "the order is open", for an order table aliased ``alias``."""
    return SQL("%s.state IN %s", SQL.identifier(alias), OPEN_STATES)


def automatic_message_key(value):
    """The message a dunning-run line is part of: its key without the contact (with the contact mode
    "all", one message is one line per contact). ``value`` is a column (``SQL``) or a key."""
    return SQL("array_to_string((string_to_array(%s, ':'))[1:5], ':')", value)


def testing():
    """Odoo's tests share one transaction that must never be committed or rolled back."""
    return getattr(threading.current_thread(), "testing", False)


def commit(cr):
    """Make a job's progress durable (not under test)."""
    if not testing():
        cr.commit()  # pylint: disable=invalid-commit


def rollback(cr):
    if not testing():
        cr.rollback()


def batch_size(env):
    """How many records a job handles per committed batch (Settings, "Batch size")."""
    value = env["ir.config_parameter"].sudo().get_param("payment_dunning.batch_size")
    try:
        size = int(value or DEFAULT_BATCH_SIZE)
    except ValueError:
        return DEFAULT_BATCH_SIZE
    return min(max(size, 1), MAX_BATCH_SIZE) if size > 0 else DEFAULT_BATCH_SIZE


def retry_serialization(cr, work, retry=True, attempts=SERIALIZATION_ATTEMPTS):
    """``work()``, run again on a fresh snapshot when another worker's commit conflicts with it.

    Two workers of the same job are expected to meet (README, "Two workers at once"): their
    conflict is not an error, so ``odoo.sql_db`` is kept quiet about it. Starting over rolls the
    transaction back, so only a job that committed its progress may ``retry``; under test (one
    shared transaction) the conflict is raised.
    """
    for attempt in range(attempts):
        try:
            with mute_logger("odoo.sql_db"):
                return work()
        except psycopg2.errors.SerializationFailure:
            if not retry or testing() or attempt == attempts - 1:
                raise
            cr.rollback()
    return None
