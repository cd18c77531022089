from . import payment_order
from . import payment_order_line
from . import res_partner
from . import dunning_template
from . import qrapi_connector
from . import payment_order_notification
from . import res_config_settings
from . import service_plan
