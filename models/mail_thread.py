import logging

from odoo import api, models
from odoo.tools import email_normalize
from odoo.tools.mail import unfold_references

_logger = logging.getLogger(__name__)

# the reason kept on the communication line: one line, short enough for the list and the chatter
REASON_LENGTH = 200


class MailThread(models.AbstractModel):
    _inherit = "mail.thread"

    @api.model
    def _routing_handle_bounce(self, email_message, message_dict):
        """A bounced collection email fails its communication line, with the reason the bounce gives."""
        super()._routing_handle_bounce(email_message, message_dict)
        try:
            with self.env.cr.savepoint():
                lines = _bounced_lines(self.env, message_dict)
                if lines:
                    _record_bounce(lines, email_message, message_dict)
        except Exception:  # the status of a reminder is worth less than the mail gateway processing its inbox
            _logger.exception("Bounce %s not recorded on the collection messages", message_dict.get("message_id"))


def _bounced_lines(env, message_dict):
    """The sent collection emails (sudo) whose Message-Id the bounce refers to.

    Odoo finds the references in the returned message (or the bounce's own headers); a bounce
    without the returned message still answers ours in its In-Reply-To.
    """
    references = message_dict.get("bounced_msg_ids") or unfold_references(message_dict.get("in_reply_to") or "")
    # Odoo stores Message-Ids in their angle brackets; a line may hold one without
    bare = {reference.strip().strip("<>") for reference in references} - {""}
    candidates = bare | {f"<{reference}>" for reference in bare}
    if not candidates:
        return env["payment.order.notification"].sudo()
    return (
        env["payment.order.notification"]
        .sudo()
        .search([("channel", "=", "email"), ("state", "=", "sent"), ("provider_message_id", "in", sorted(candidates))])
    )


def _record_bounce(lines, email_message, message_dict):
    """Fail each line once: only *sent* lines are found, a second bounce finds them failed already.

    Two bounces of one message processed at once cannot both write a line: the second
    transaction's update of the same row is a serialization failure, and its bounce is retried.
    """
    env = lines.env
    diagnostics = _dsn_diagnostics(email_message)
    for line in lines:
        reason = (
            diagnostics.get(email_normalize(line.recipient or "") or "")
            or next(iter(diagnostics.values()), "")
            or _one_line(message_dict.get("subject") or "")
            or env._("no reason given")
        )
        line.write(
            {
                "state": "failed",
                "failure_type": "bounced",
                "error": env._(
                    "The email to %(email)s bounced: %(reason)s",
                    email=line.recipient or message_dict.get("bounced_email") or "",
                    reason=reason,
                ),
            }
        )
        line.order_ids._log_reminder_failed(line)


def _dsn_diagnostics(email_message):
    """{final recipient (normalized): why it failed} from the delivery status report of a bounce."""
    diagnostics = {}
    for part in email_message.walk():
        if part.get_content_type() != "message/delivery-status" or not isinstance(part.get_payload(), list):
            continue
        # the first block of fields is about the message, each next one about a recipient
        for block in part.get_payload()[1:]:
            reason = _diagnostic(block)
            if reason:
                recipient = str(block.get("Final-Recipient") or "").partition(";")[2]
                diagnostics.setdefault(email_normalize(recipient.strip()) or "", reason)
    return diagnostics


def _diagnostic(block):
    """The server's answer ("550 5.1.1 User unknown"), else the status code ("5.1.1")."""
    code = str(block.get("Diagnostic-Code") or "")
    _kind, separator, text = code.partition(";")  # "smtp; 550 ..."
    return _one_line(text if separator else code) or _one_line(str(block.get("Status") or ""))


def _one_line(text):
    text = " ".join(text.split())
    return text if len(text) <= REASON_LENGTH else text[: REASON_LENGTH - 1] + "…"
