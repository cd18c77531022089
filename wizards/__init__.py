from . import service_plan_generate
from . import payment_dunning_settings
