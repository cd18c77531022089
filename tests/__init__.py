from . import test_payment_order, test_res_partner, test_security
