"""Chatter entries written with SQL, for the set-based paths (the overdue job, bulk creations).

The rows are what the ORM's ``_message_log_batch`` and ``_message_track`` store for the same entry
(``tests/test_order_history.py`` holds them to it), so the chatter shows them alike; but they are
written with one INSERT … SELECT for any number of records: at hundreds of thousands of orders a
per-record ``message_post`` would not end in the job's time.

``ids`` is either a list of record ids or an ``SQL`` query returning one ``id`` column; with
``with_`` (the CTEs before, without ``WITH``), that query may read a data-modifying CTE, so that the
change and its chatter entries are one statement: neither is ever left without the other.
"""

from markupsafe import escape

from odoo import fields
from odoo.tools import SQL
from odoo.tools.mail import generate_tracking_message_id

# mail.message columns filled like _message_log_batch fills them; the rest keep their defaults (NULL)
MESSAGE_COLUMNS = SQL(
    "model, res_id, body, message_type, subtype_id, author_id, email_from, message_id, reply_to, "
    "is_internal, email_add_signature, date, create_uid, create_date, write_uid, write_date"
)


def _message_values(env, model_name, author, res_id, body):
    """The SELECT list of one logged note of ``model_name`` ``res_id`` (both SQL expressions)."""
    author = author or env.user.partner_id
    email_from = author.email_formatted
    reply_to = env["mail.thread"]._notify_get_reply_to(default=email_from)[False]
    now = fields.Datetime.now()
    return SQL(
        "%s, %s, %s, 'notification', %s, %s, %s, %s, %s, true, false, %s, %s, %s, %s, %s",
        model_name,
        res_id,
        body,
        env["ir.model.data"]._xmlid_to_res_id("mail.mt_note"),
        author.id,
        email_from,
        generate_tracking_message_id("message-notify"),
        reply_to,
        now,
        env.uid,
        now,
        env.uid,
        now,
    )


def _stored_body(env, body, cache=None):
    """``body`` as the ORM stores a logged note's: escaped if text, then sanitized as the field does."""
    if cache is not None and body in cache:
        return cache[body]
    messages = env["mail.message"]
    stored = messages._fields["body"].convert_to_column(escape(body), messages)
    if cache is not None:
        cache[body] = stored
    return stored


def _ids_source(ids):
    """``ids`` as a relation with an ``id`` column."""
    if isinstance(ids, SQL):
        return SQL("(%s) AS chatter_source", ids)
    return SQL("unnest(%s::int[]) AS chatter_source(id)", list(ids))


def _with(with_, *ctes):
    parts = [cte for cte in (with_, *ctes) if cte is not None]
    return SQL("WITH %s", SQL(", ").join(parts))


def log_note_sql(env, model_name, ids, body, author=None, with_=None):
    """An internal note ``body`` (text, escaped as the ORM escapes it) on each record of ``ids``;
    ``body`` may also be {id: body} (``ids`` a list then). Return how many notes were written."""
    env["mail.message"].flush_model()
    if isinstance(body, dict):
        cache = {}
        ids = list(body)
        source = SQL(
            "unnest(%s::int[], %s::text[]) AS chatter_source(id, body)",
            ids,
            [_stored_body(env, text, cache) for text in body.values()],
        )
        body_sql = SQL("chatter_source.body")
    else:
        source = _ids_source(ids)
        body_sql = SQL("%s", _stored_body(env, body))
    if not isinstance(ids, SQL) and not ids:
        return 0
    query = SQL(
        "INSERT INTO mail_message (%s) SELECT %s FROM %s",
        MESSAGE_COLUMNS,
        _message_values(env, model_name, author, SQL("chatter_source.id"), body_sql),
        source,
    )
    env.cr.execute(SQL("%s %s", _with(with_), query) if with_ is not None else query)
    count = env.cr.rowcount
    _invalidate_messages(env, model_name, ids)
    return count


def log_tracking_sql(env, model_name, ids, field_name, old_value, new_value, author=None, with_=None):
    """On each record of ``ids``, the entry the ORM's tracking logs when ``field_name`` goes from
    ``old_value`` to ``new_value`` (raw values: a selection key, a date…): an empty note with one
    tracking value. Return how many entries were written."""
    if not isinstance(ids, SQL) and not ids:
        return 0
    env["mail.message"].flush_model()
    env["mail.tracking.value"].flush_model()
    model = env[model_name]
    col_info = model.fields_get([field_name], attributes=("string", "type", "selection", "currency_field"))
    tracking = env["mail.tracking.value"]._create_tracking_values(
        old_value, new_value, field_name, col_info[field_name], model.browse()
    )
    columns = sorted(tracking)
    now = fields.Datetime.now()
    messages = SQL(
        "chatter_messages AS (INSERT INTO mail_message (%s) SELECT %s FROM %s RETURNING id)",
        MESSAGE_COLUMNS,
        _message_values(env, model_name, author, SQL("chatter_source.id"), SQL("%s", _stored_body(env, ""))),
        _ids_source(ids),
    )
    env.cr.execute(
        SQL(
            """%s
            INSERT INTO mail_tracking_value (%s, mail_message_id, create_uid, create_date, write_uid, write_date)
            SELECT %s, chatter_messages.id, %s, %s, %s, %s FROM chatter_messages""",
            _with(with_, messages),
            SQL(", ").join(SQL.identifier(column) for column in columns),
            SQL(", ").join(SQL("%s", None if tracking[column] is False else tracking[column]) for column in columns),
            env.uid,
            now,
            env.uid,
            now,
        )
    )
    count = env.cr.rowcount
    _invalidate_messages(env, model_name, ids)
    return count


def log_amount_tracking_sql(env, model_name, rows, field_names, author=None, with_=None):
    """The ORM's tracking entry of monetary fields whose values differ per record: ``rows`` is an SQL
    relation (a CTE name) with ``id``, ``currency_id`` and, for each of ``field_names``, ``old_<name>``
    and ``new_<name>`` columns. One note per record, one tracking value per field. Return how many
    notes were written."""
    env["mail.message"].flush_model()
    env["mail.tracking.value"].flush_model()
    model = env[model_name]
    field_ids = {name: env["ir.model.fields"]._get(model_name, name).id for name in field_names}
    now = fields.Datetime.now()
    messages = SQL(
        """chatter_messages AS (
            INSERT INTO mail_message (%s) SELECT %s FROM %s AS chatter_source RETURNING id, res_id
        )""",
        MESSAGE_COLUMNS,
        _message_values(env, model_name, author, SQL("chatter_source.id"), SQL("%s", _stored_body(env, ""))),
        rows,
    )
    values = SQL(" UNION ALL ").join(
        SQL(
            "SELECT %s AS field_id, r.%s AS old_value, r.%s AS new_value, r.currency_id, m.id AS message_id "
            "FROM chatter_messages m JOIN %s r ON r.id = m.res_id",
            field_id,
            SQL.identifier(f"old_{name}"),
            SQL.identifier(f"new_{name}"),
            rows,
        )
        for name, field_id in field_ids.items()
    )
    env.cr.execute(
        SQL(
            """%s
            INSERT INTO mail_tracking_value (field_id, old_value_float, new_value_float, currency_id,
                                             mail_message_id, create_uid, create_date, write_uid, write_date)
            SELECT field_id, old_value, new_value, currency_id, message_id, %s, %s, %s, %s FROM (%s) tracked""",
            _with(with_, messages),
            env.uid,
            now,
            env.uid,
            now,
            values,
        )
    )
    count = env.cr.rowcount // max(len(field_names), 1)
    model.invalidate_model(["message_ids"])
    env["mail.message"].invalidate_model()
    return count


def _invalidate_messages(env, model_name, ids):
    env["mail.message"].invalidate_model()
    if isinstance(ids, SQL):
        env[model_name].invalidate_model(["message_ids"])
    else:
        env[model_name].browse(ids).invalidate_recordset(["message_ids"])
