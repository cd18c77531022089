"""SMTP sessions of one send run: one connection per mail server, a timeout, typed failures.

Odoo opens its SMTP connections with a fixed 60-second timeout and keeps only the text of a
delivery failure. The send queue needs less patience (a silent server must not hold a worker) and
the kind of failure (a refused recipient is final, a server that is down is retried).
"""

import smtplib
import threading

from .delivery_error import DeliveryError

_local = threading.local()
_stdlib_get_socket = smtplib.SMTP._get_socket


def _get_socket(self, host, port, timeout):
    # Only while SmtpSessions connects on this thread: everybody else keeps Odoo's timeout.
    limit = getattr(_local, "timeout", None)
    if limit:
        timeout = min(timeout, limit) if isinstance(timeout, int | float) else limit
        self.timeout = timeout
    return _stdlib_get_socket(self, host, port, timeout)


if smtplib.SMTP._get_socket is not _get_socket:
    smtplib.SMTP._get_socket = _get_socket


class _RecordingSession:
    """Odoo's SMTP session that remembers the exception of its last delivery."""

    def __init__(self, session):
        self._session = session
        self.last_error = None

    def send_message(self, *args, **kwargs):
        self.last_error = None
        try:
            return self._session.send_message(*args, **kwargs)
        except Exception as error:
            self.last_error = error
            raise

    def __getattr__(self, name):
        return getattr(self._session, name)


class SmtpSessions:
    """Send ``mail.mail`` records over kept SMTP sessions; ``close()`` at the end of the run."""

    def __init__(self, env, timeout):
        self.env = env
        self.timeout = timeout
        self._sessions = {}

    def send(self, mail):
        """Send one ``mail.mail`` (its state tells the outcome); raise ``DeliveryError`` on failure."""
        server_id, alias_domain_id, smtp_from, _ids = next(iter(mail._split_by_mail_configuration()))
        key = (server_id, smtp_from)
        try:
            session = self._session(key)
        except DeliveryError as error:
            self._mark_failed(mail, error)
            raise
        try:
            mail._send(
                smtp_session=session,
                alias_domain_id=alias_domain_id,
                mail_server=self.env["ir.mail_server"].sudo().browse(server_id),
            )
        except smtplib.SMTPServerDisconnected as error:
            self._drop(key)
            failure = self._unreachable(error)
            self._mark_failed(mail, failure)
            raise failure from error
        if mail.state == "exception":
            error = session.last_error if session is not None else None
            if error is None or isinstance(error, OSError | smtplib.SMTPServerDisconnected):
                self._drop(key)
            raise self._classify(error, mail)

    @staticmethod
    def _mark_failed(mail, error):
        # never left "outgoing": Odoo's own mail queue would send it behind the send queue's back
        mail.write({"state": "exception", "failure_reason": str(error.args[0]), "failure_type": "mail_smtp"})

    def close(self):
        for key in list(self._sessions):
            self._drop(key)

    def _session(self, key):
        if key in self._sessions:
            session = self._sessions[key]
            if isinstance(session, DeliveryError):
                # this run already found the server down: do not wait for it once per message
                raise session
            return session
        server_id, smtp_from = key
        _local.timeout = self.timeout
        try:
            session = self.env["ir.mail_server"].sudo().connect(mail_server_id=server_id, smtp_from=smtp_from)
        except DeliveryError:
            raise
        except Exception as error:  # every way a connection fails is told to the user
            failure = self._unreachable(error)
            self._sessions[key] = failure
            raise failure from error
        finally:
            _local.timeout = None
        # in Odoo's test mode there is no session: mail._send then skips the SMTP conversation
        session = _RecordingSession(session) if session is not None else None
        self._sessions[key] = session
        return session

    def _drop(self, key):
        session = self._sessions.pop(key, None)
        if session is not None and not isinstance(session, DeliveryError):
            try:
                session.quit()
            except Exception:  # a broken session is closed all the same
                session.close()

    def _unreachable(self, error):
        return DeliveryError(
            self.env._("The mail server cannot be reached: %s", str(error) or error.__class__.__name__),
            "smtp_unreachable",
            retriable=True,
        )

    def _classify(self, error, mail):
        reason = mail.failure_reason or str(error or "")
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            return DeliveryError(self.env._("The mail server refused the recipient: %s", reason), "smtp_refused")
        if isinstance(error, smtplib.SMTPResponseException):
            if 400 <= error.smtp_code < 500:  # "try again later"
                return DeliveryError(
                    self.env._("The mail server is busy: %s", reason), "smtp_unreachable", retriable=True
                )
            return DeliveryError(self.env._("The mail server refused the message: %s", reason), "smtp_refused")
        if isinstance(error, OSError | smtplib.SMTPException):
            return self._unreachable(error)
        if mail.failure_type in ("mail_email_invalid", "mail_email_missing"):
            return DeliveryError(self.env._("The email address is not valid: %s", reason), "no_contact")
        return DeliveryError(self.env._("The email could not be sent: %s", reason), "smtp_refused")
