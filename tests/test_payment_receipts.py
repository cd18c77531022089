from odoo.tests import tagged  # noqa: F401
