"""Running totals of the payment orders, kept by PostgreSQL (README, "Totals at a million orders").

The panel above the orders list, the dashboard and the aging report sum every open order. At a
million orders that is a scan of the table on each screen, and fifty clerks turn it into minutes
of waiting. Instead, statement triggers on ``payment_order`` append what each INSERT, UPDATE or
DELETE changed to two small tables:

- ``payment_order_summary``: orders, amount, balance and orders with a balance, per company,
  currency, state and due date;
- ``payment_order_paid_summary``: orders paid without a write-off, per company and payment date,
  with the sum of their days from due date and from creation to payment.

Appending (never updating a shared row) keeps writers from waiting for each other; the figures
are read as sums of a few thousand rows, and inside the reader's own transaction, so they are
exactly what a ``GROUP BY`` over the orders would say, uncommitted changes of others excluded.
The hourly job folds the appended rows into one per key (:func:`compact`).
"""

from odoo.tools import SQL

from . import collection

SUMMARY_TABLE = "payment_order_summary"
PAID_TABLE = "payment_order_paid_summary"
COMPACT_LOCK = 0x50445355  # "PDSU": one compaction at a time

_TABLES = f"""
CREATE TABLE IF NOT EXISTS {SUMMARY_TABLE} (
    company_id integer NOT NULL,
    currency_id integer,
    state varchar,
    due_date date,
    order_count bigint NOT NULL,
    amount_total numeric NOT NULL,
    balance numeric NOT NULL,
    balance_count bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS {SUMMARY_TABLE}_company_index ON {SUMMARY_TABLE} (company_id, state);
CREATE TABLE IF NOT EXISTS {PAID_TABLE} (
    company_id integer NOT NULL,
    paid_date date NOT NULL,
    order_count bigint NOT NULL,
    days_after_due bigint NOT NULL,
    days_after_creation bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS {PAID_TABLE}_company_index ON {PAID_TABLE} (company_id, paid_date);
"""

# One row per key of the orders in {rows}, signed by {sign}: the measures both tables keep.
_SUMMARY_ROWS = """
SELECT company_id, currency_id, state, due_date, {sign} * count(*) AS order_count,
       {sign} * coalesce(sum(amount_total), 0) AS amount_total, {sign} * coalesce(sum(balance), 0) AS balance,
       {sign} * count(*) FILTER (WHERE balance > 0) AS balance_count
  FROM {rows} GROUP BY company_id, currency_id, state, due_date
"""
_PAID_ROWS = """
SELECT r.company_id, r.paid_date, {sign} * count(*) AS order_count,
       {sign} * sum(r.paid_date - r.due_date) AS days_after_due,
       {sign} * sum(r.paid_date - (r.create_date AT TIME ZONE 'UTC'
                                   AT TIME ZONE coalesce(c.collection_tz, 'UTC'))::date) AS days_after_creation
  FROM {rows} r JOIN res_company c ON c.id = r.company_id
 WHERE r.state = 'paid' AND r.paid_date IS NOT NULL AND coalesce(r.written_off_amount, 0) = 0
 GROUP BY r.company_id, r.paid_date
"""


def _fold(table, keys, measures, source):
    """INSERT into ``table`` the rows of ``source`` summed per key, the keys whose sums are all zero left out."""
    sums = ", ".join(f"sum({measure})" for measure in measures)
    nonzero = " OR ".join(f"sum({measure}) <> 0" for measure in measures)
    return f"""
        INSERT INTO {table} ({", ".join((*keys, *measures))})
        SELECT {", ".join(keys)}, {sums} FROM {source} GROUP BY {", ".join(keys)} HAVING {nonzero};
    """


def _delta(table, rows_sql, keys, measures):
    """What a statement changed: the new rows' measures minus the old rows', per key."""
    added = rows_sql.format(sign=1, rows="new_rows")
    removed = rows_sql.format(sign=-1, rows="old_rows")
    return _fold(table, keys, measures, f"({added} UNION ALL {removed}) AS delta")


_SUMMARY_KEYS = ("company_id", "currency_id", "state", "due_date")
_SUMMARY_MEASURES = ("order_count", "amount_total", "balance", "balance_count")
_PAID_KEYS = ("company_id", "paid_date")
_PAID_MEASURES = ("order_count", "days_after_due", "days_after_creation")


def _one_sided(sign, rows):
    """An INSERT (``rows`` counted in, ``sign`` 1) or a DELETE (counted out, -1), in both tables."""
    return _fold(
        SUMMARY_TABLE, _SUMMARY_KEYS, _SUMMARY_MEASURES, f"({_SUMMARY_ROWS.format(sign=sign, rows=rows)}) AS side"
    ) + _fold(PAID_TABLE, _PAID_KEYS, _PAID_MEASURES, f"({_PAID_ROWS.format(sign=sign, rows=rows)}) AS side")


_FUNCTION = """
CREATE OR REPLACE FUNCTION payment_order_summary_delta() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {insert}
    ELSIF TG_OP = 'DELETE' THEN
        {delete}
    ELSE
        {update}
    END IF;
    RETURN NULL;
END
$body$;
"""

_TRIGGERS = {
    "payment_order_summary_insert": "AFTER INSERT ON payment_order REFERENCING NEW TABLE AS new_rows",
    "payment_order_summary_update": (
        "AFTER UPDATE ON payment_order REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
    "payment_order_summary_delete": "AFTER DELETE ON payment_order REFERENCING OLD TABLE AS old_rows",
}


# a company's new collections timezone moves the day its orders were created on: count its paid orders again
_RECOUNT_FUNCTION = """
CREATE OR REPLACE FUNCTION payment_order_paid_summary_recount() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    LOCK TABLE payment_order IN SHARE MODE;
    DELETE FROM {table} WHERE company_id = NEW.id;
    {recount}
    RETURN NULL;
END
$body$;
DROP TRIGGER IF EXISTS payment_order_paid_summary_timezone ON res_company;
CREATE TRIGGER payment_order_paid_summary_timezone AFTER UPDATE OF collection_tz ON res_company
    FOR EACH ROW WHEN (OLD.collection_tz IS DISTINCT FROM NEW.collection_tz)
    EXECUTE FUNCTION payment_order_paid_summary_recount();
"""


def install(cr):
    """Create the tables and triggers (again: the module's update may change them) and count every
    order once. Run while the module is installed or updated."""
    cr.execute(SQL(_TABLES))
    cr.execute(
        SQL(
            _FUNCTION.format(
                insert=_one_sided(1, "new_rows"),
                delete=_one_sided(-1, "old_rows"),
                update=_delta(SUMMARY_TABLE, _SUMMARY_ROWS, _SUMMARY_KEYS, _SUMMARY_MEASURES)
                + _delta(PAID_TABLE, _PAID_ROWS, _PAID_KEYS, _PAID_MEASURES),
            )
        )
    )
    paid_of_company = _PAID_ROWS.format(sign=1, rows="payment_order").replace(
        "WHERE", "WHERE r.company_id = NEW.id AND", 1
    )
    recount = _fold(PAID_TABLE, _PAID_KEYS, _PAID_MEASURES, f"({paid_of_company}) AS paid")
    cr.execute(SQL(_RECOUNT_FUNCTION.format(table=PAID_TABLE, recount=recount)))
    for name, event in _TRIGGERS.items():
        cr.execute(SQL("DROP TRIGGER IF EXISTS %s ON payment_order", SQL.identifier(name)))
        cr.execute(
            SQL(
                f"CREATE TRIGGER %s {event} FOR EACH STATEMENT EXECUTE FUNCTION payment_order_summary_delta()",
                SQL.identifier(name),
            )
        )
    rebuild(cr)


def rebuild(cr):
    """Count every order again, orders' writers held off meanwhile (a module update)."""
    tables = SQL.identifier(SUMMARY_TABLE), SQL.identifier(PAID_TABLE)
    cr.execute(SQL("LOCK TABLE payment_order, %s, %s IN EXCLUSIVE MODE", *tables))
    cr.execute(SQL("DELETE FROM %s; DELETE FROM %s;", *tables))
    cr.execute(SQL(_one_sided(1, "payment_order")))


def compact(cr):
    """Fold the appended rows into one per key. Rows of transactions still running are not seen,
    and stay; a second compaction at the same time waits for nothing and does nothing."""
    cr.execute("SELECT pg_try_advisory_xact_lock(%s)", (COMPACT_LOCK,))
    if not cr.fetchone()[0]:
        return False
    for table, keys, measures in (
        (SUMMARY_TABLE, _SUMMARY_KEYS, _SUMMARY_MEASURES),
        (PAID_TABLE, _PAID_KEYS, _PAID_MEASURES),
    ):
        gone = f"(DELETE FROM {table} RETURNING {', '.join((*keys, *measures))})"
        cr.execute(SQL(f"WITH gone AS {gone} {_fold(table, keys, measures, 'gone')}"))
    return True


def _companies_sql(company_ids, alias="s", column="company_id"):
    if company_ids is None:
        return SQL("TRUE")
    return SQL("%s = ANY(%s)", SQL.identifier(alias, column), list(company_ids))


def state_totals(cr, company_ids, states=None, currency_ids=None):
    """[(state, currency id, orders, amount)] of the orders of these companies (None: all)."""
    cr.execute(
        SQL(
            f"""
            SELECT s.state, s.currency_id, sum(s.order_count), sum(s.amount_total)
              FROM {SUMMARY_TABLE} s
             WHERE %s AND %s AND %s
             GROUP BY s.state, s.currency_id
            HAVING sum(s.order_count) <> 0
            """,
            _companies_sql(company_ids),
            SQL("s.state = ANY(%s)", list(states)) if states is not None else SQL("TRUE"),
            SQL("s.currency_id = ANY(%s)", list(currency_ids)) if currency_ids is not None else SQL("TRUE"),
        )
    )
    return cr.fetchall()


def _company_days_sql(company_ids):
    """Each company's today, as the aging view reckons it (the company's timezone)."""
    return SQL(
        """
        SELECT c.id AS company_id, (now() AT TIME ZONE COALESCE(cp.tz, 'UTC'))::date AS today
          FROM res_company c JOIN res_partner cp ON cp.id = c.partner_id
         WHERE %s
        """,
        _companies_sql(company_ids, "c", "id"),
    )


def aging(cr, company_ids):
    """{bucket: (orders, balance, most days overdue)} of the open orders with a balance, as the
    aging report groups them."""
    cr.execute(
        SQL(
            f"""
            WITH days AS (%s),
            due AS (
                SELECT s.company_id, s.due_date, sum(s.balance_count) AS orders, sum(s.balance) AS balance
                  FROM {SUMMARY_TABLE} s
                 WHERE %s AND %s
                 GROUP BY s.company_id, s.due_date
                HAVING sum(s.balance_count) <> 0
            ),
            late AS (
                SELECT d.today - due.due_date AS days, due.orders, due.balance
                  FROM due JOIN days d ON d.company_id = due.company_id
            )
            SELECT CASE WHEN days <= 0 THEN '0'
                        WHEN days <= 30 THEN '1_30'
                        WHEN days <= 60 THEN '31_60'
                        WHEN days <= 90 THEN '61_90'
                        ELSE '90_plus' END AS bucket,
                   sum(orders), sum(balance), GREATEST(max(days), 0)
              FROM late GROUP BY 1
            """,
            _company_days_sql(company_ids),
            _companies_sql(company_ids),
            collection.open_state_sql("s"),
        )
    )
    return {bucket: (int(orders), float(balance), days) for bucket, orders, balance, days in cr.fetchall()}


def due_between(cr, company_ids, start, end):
    """(orders, balance) of the open orders due from ``start`` to ``end``."""
    cr.execute(
        SQL(
            f"""
            SELECT coalesce(sum(s.order_count), 0), sum(s.balance)
              FROM {SUMMARY_TABLE} s
             WHERE %s AND %s AND s.due_date BETWEEN %s AND %s
            """,
            _companies_sql(company_ids),
            collection.open_state_sql("s"),
            start,
            end,
        )
    )
    count, balance = cr.fetchone()
    return int(count), float(balance) if balance is not None else None


def days_to_pay(cr, company_ids, since):
    """(orders, average days after the due date, average days after creation) of the orders paid
    since ``since`` without a write-off."""
    cr.execute(
        SQL(
            f"""
            SELECT coalesce(sum(order_count), 0), sum(days_after_due), sum(days_after_creation)
              FROM {PAID_TABLE} s
             WHERE %s AND s.paid_date >= %s
            """,
            _companies_sql(company_ids),
            since,
        )
    )
    count, after_due, after_creation = cr.fetchone()
    if not count:
        return 0, None, None
    return int(count), float(after_due) / int(count), float(after_creation) / int(count)


def _simple_domain(domain, fields):
    """{field: set of values} when ``domain`` only ANDs ``=``/``in`` conditions on ``fields``, else None."""
    values = {}
    for term in domain:
        if term == "&":
            continue
        if not isinstance(term, list | tuple) or len(term) != 3:
            return None
        field, operator, value = term
        if field not in fields or operator not in ("=", "in"):
            return None
        if operator == "=":
            value = [value]
        if not isinstance(value, list | tuple):
            return None
        try:
            value = set(value)
        except TypeError:  # an unhashable value: not a condition the totals know
            return None
        values[field] = values[field] & value if field in values else value
    return values


def scope(model, domain, fields, company_rule):
    """When the running totals may answer ``domain`` on ``model`` for its user: (the company ids, or
    None for every company; {field: values asked} of the other ``fields``). None when only a search
    can: a condition they do not keep, or a record rule other than the multi-company one
    (``company_rule``, an XML id) applies to the user."""
    values = _simple_domain(domain, {"company_id", *fields})
    if values is None:
        return None
    model.browse().check_access("read")
    companies = None
    if not model.env.su:
        rule = model.env.ref(company_rule, raise_if_not_found=False)
        if not rule or model.env["ir.rule"]._get_rules(model._name).ids != rule.ids:
            return None
        companies = set(model.env.companies.ids)
    if "company_id" in values:
        wanted = {
            company
            for company in values.pop("company_id")
            if isinstance(company, int) and not isinstance(company, bool)
        }
        companies = wanted if companies is None else companies & wanted
    model.env["payment.order"].flush_model()
    return companies, values
