from . import test_payment_order
from . import test_res_partner
from . import test_security
from . import test_i18n
from . import test_ui
from . import test_dunning_template
from . import test_qrapi_connector
from . import test_notification
