from . import service_plan_generate
