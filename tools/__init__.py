# The addon's own helpers (devenv.py and odoo_script.py beside them are development scripts,
# not imported by the addon).
from .delivery_error import DeliveryError
from .whatsapp_api import MAX_TIMEOUT, TRANSPORTS, WhatsAppApi
from .smtp_session import SmtpSessions
