from odoo.exceptions import UserError


class DeliveryError(UserError):
    """A message could not be delivered.

    ``failure_type`` is one of the keys of ``payment.order.notification``'s failure types;
    ``retriable`` tells whether a later attempt may succeed (the queue backs off and tries again).
    """

    def __init__(self, message, failure_type, retriable=False):
        super().__init__(message)
        self.failure_type = failure_type
        self.retriable = retriable
