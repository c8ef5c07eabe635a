"""Creating SIP trunks: verified numbers, passwords, submission tokens, services, forms, views."""
