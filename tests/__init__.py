from . import test_payment_order
