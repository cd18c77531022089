{
    "name": "Payment Dunning",
    "summary": "Payment orders, overdue tracking and collection reminders by email and WhatsApp",
    "version": "18.0.1.0.0",
    "category": "Accounting/Accounting",
    "author": "payment_dunning contributors",
    "website": "https://github.com/payment-dunning/payment_dunning",
    "license": "LGPL-3",
    "depends": ["mail", "account", "phone_validation"],
    "external_dependencies": {"python": ["phonenumbers"]},
    "data": [
        "security/payment_dunning_security.xml",
        "security/ir.model.access.csv",
        "views/payment_order_views.xml",
        "views/res_partner_views.xml",
        "views/dunning_template_views.xml",
        "views/qrapi_connector_views.xml",
        "views/payment_order_notification_views.xml",
        "views/menus.xml",
        "data/dunning_template_data.xml",
        "data/mail_template_data.xml",
        "data/ir_cron_data.xml",
    ],
    "demo": ["demo/payment_dunning_demo.xml"],
    "assets": {
        "web.assets_backend": [
            "payment_dunning/static/src/views/*",
        ],
        "web.assets_tests": [
            "payment_dunning/static/tests/tours/*",
        ],
    },
    "application": True,
}
