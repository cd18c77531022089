from . import payment_order, payment_order_line, res_partner
