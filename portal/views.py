"""Project-level pages: the landing page that sends each person where their role lets them work."""

from django.shortcuts import redirect, render
from django.urls import reverse

from portal.context_processors import NAV_ITEMS
from trunks.access import user_has_role


def home(request):
    for _label, url_name, role in NAV_ITEMS:
        if user_has_role(user=request.user, min_role=role):
            return redirect(reverse(url_name))
    return render(request, "home.html")
