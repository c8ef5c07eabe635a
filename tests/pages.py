"""Reading the pages the portal serves, as tests compare them."""

import re


def per_request_values_blanked(html: str) -> str:
    """The page with what each request makes anew (CSRF tokens, the one-time submission token,
    the CSP nonce) blanked: two renderings of the same page then compare equal."""
    html = re.sub(r'(name="csrfmiddlewaretoken" value=")[^"]+', r"\1", html)
    html = re.sub(r'("x-csrftoken": ")[^"]+', r"\1", html)
    html = re.sub(r'(name="submission_token" value=")[^"]+', r"\1", html)
    return re.sub(r'(nonce=")[^"]+', r"\1", html)
