from . import service_plan_generate
from . import payment_dunning_settings
from . import payment_order_new
from . import payment_order_notify
from . import payment_order_write_off
from . import qrapi_connector_test
from . import payment_order_promise_wizard
from . import payment_order_register_payment
