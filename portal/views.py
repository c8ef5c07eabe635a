"""Project-level pages: the landing page that sends each person where their role lets them work."""

from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse

from portal.context_processors import NAV_ITEMS
from trunks.selectors import user_has_role


def home(request):
    for _label, url_name, role in NAV_ITEMS:
        if user_has_role(user=request.user, min_role=role):
            try:
                return redirect(reverse(url_name))
            except NoReverseMatch:
                continue
    return render(request, "home.html")
