"""Sign-in through the company's identity provider (OpenID Connect), with Authlib.

Authlib does the protocol: discovery from the issuer, the authorization code flow with PKCE (S256),
state kept in the session and used once, a nonce, and the ID token's signature (the provider's
JWKS), issuer, audience and expiry. This module turns its answers into the portal's: who the person
is (trunks.accounts.services), their tenants from their groups, and a clear page when refused.
"""

import logging
import time
from functools import cache
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from trunks.accounts.models import OidcIdentity, SignInOutcome
from trunks.accounts.second_factor import AUTH_METHOD_KEY, AUTH_METHOD_OIDC
from trunks.accounts.services import (
    OidcClaims,
    SignInRefused,
    group_roles_apply,
    oidc_user_resolve,
    sign_in_event_record,
)
from trunks.reauth import reauth_mark, safe_next_url

logger = logging.getLogger(__name__)

BACKEND = "trunks.accounts.backends.OidcBackend"
NEXT_KEY = "oidc_next"
REAUTH_KEY = "oidc_reauth"
ID_TOKEN_KEY = "oidc_id_token"
HTTP_TIMEOUT = 10  # seconds, for every call to the provider (discovery, JWKS, token, userinfo)

# Why the portal refused, for a person (the reason code goes to the sign-in log).
REFUSALS = {
    "state": "This sign-in link was already used or has expired. Start again from the log-in page.",
    "signature": "The identity provider's answer failed its signature check, so it was refused.",
    "expired": "The identity provider's answer had expired. Start again from the log-in page.",
    "audience": "The identity provider's answer was meant for another application, so it was refused.",
    "issuer": "The identity provider's answer came from an unexpected issuer, so it was refused.",
    "nonce": "The identity provider's answer did not match this sign-in, so it was refused.",
    "no_id_token": "The identity provider sent no ID token, so the sign-in was refused.",
    "provider_error": "The identity provider did not sign you in",
    "provider_unreachable": "The identity provider could not be reached. Try again in a moment.",
    "userinfo_mismatch": "The identity provider's answers disagreed about who you are.",
    "invalid_token": "The identity provider's answer could not be verified, so it was refused.",
}


@cache
def _client(issuer: str, client_id: str, client_secret: str, scopes: str):
    # Authlib (and the JOSE library under it) is imported on the first sign-in through the
    # provider, not when the URLs are loaded: ~35 ms of CPU that every process serving the
    # portal (each gunicorn worker, each manage.py command) paid whether or not OIDC is set up.
    from authlib.integrations.django_client import OAuth

    oauth = OAuth()
    return oauth.register(
        name="portal",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": scopes,
            "code_challenge_method": "S256",
            "default_timeout": HTTP_TIMEOUT,
        },
    )


def oidc_client():
    if not settings.OIDC_ENABLED:
        raise Http404("No identity provider is configured.")
    return _client(
        settings.OIDC_ISSUER,
        settings.OIDC_CLIENT_ID,
        settings.OIDC_CLIENT_SECRET,
        settings.OIDC_SCOPES,
    )


@login_not_required
@never_cache
def oidc_login(request: HttpRequest):
    """Send the person to the identity provider (a new state, nonce and PKCE verifier each time)."""
    client = oidc_client()
    request.session[NEXT_KEY] = safe_next_url(request, request.GET.get("next"))
    redirect_uri = request.build_absolute_uri(reverse("oidc_callback"))
    extra = {}
    if request.user.is_authenticated and request.GET.get("reauth"):
        # Re-authentication before a sensitive change: the provider must ask again (max_age=0),
        # and the answer must be this same person, signed in after this moment.
        request.session[REAUTH_KEY] = {"user": request.user.pk, "at": int(time.time())}
        extra = {"prompt": "login", "max_age": 0}
    else:
        request.session.pop(REAUTH_KEY, None)
    try:
        return client.authorize_redirect(request, redirect_uri, **extra)
    except OSError as error:  # requests' errors are OSErrors: discovery failed
        return _refused(
            request,
            SignInRefused(REFUSALS["provider_unreachable"], reason="provider_unreachable"),
            detail=str(error),
        )


def _reason_for(error: Exception) -> str:
    from authlib.integrations.base_client.errors import MismatchingStateError  # see _client

    name = type(error).__name__
    if isinstance(error, MismatchingStateError):
        return "state"
    if name == "BadSignatureError":
        return "signature"
    if name == "ExpiredTokenError":
        return "expired"
    claim = getattr(error, "claim_name", None) or getattr(error, "claim", None)
    if claim in {"aud", "azp"}:
        return "audience"
    if claim == "iss":
        return "issuer"
    if claim == "nonce":
        return "nonce"
    if claim == "exp":
        return "expired"
    return "invalid_token"


def _claims_from(client, token: dict) -> OidcClaims:
    id_claims = token.get("userinfo")
    if not id_claims or "id_token" not in token:
        raise SignInRefused(REFUSALS["no_id_token"], reason="no_id_token")
    claims = dict(id_claims)
    # Many providers put e-mail and groups only in userinfo; the ID token stays the authority on
    # who this is: userinfo must name the same subject (OpenID Connect Core 5.3.2).
    if client.load_server_metadata().get("userinfo_endpoint"):
        extra = client.userinfo(token=token)
        if str(extra.get("sub")) != str(id_claims["sub"]):
            raise SignInRefused(REFUSALS["userinfo_mismatch"], reason="userinfo_mismatch")
        claims = {**dict(extra), **claims}
    return OidcClaims.from_claims(
        claims, issuer=settings.OIDC_ISSUER, groups_claim=settings.OIDC_GROUPS_CLAIM
    )


@login_not_required
@never_cache
def oidc_callback(request: HttpRequest):
    """The provider sends the person back here with a code; verify everything, then sign in."""
    from authlib.integrations.base_client.errors import (  # imported with the client (_client)
        MismatchingStateError,
        OAuthError,
    )

    client = oidc_client()
    claims = None
    try:
        if request.GET.get("error"):
            description = request.GET.get("error_description") or request.GET["error"]
            raise SignInRefused(
                f"{REFUSALS['provider_error']}: {description[:200]}", reason="provider_error"
            )
        try:
            token = client.authorize_access_token(request)
        except SignInRefused:
            raise
        except OAuthError as error:
            reason = "state" if isinstance(error, MismatchingStateError) else "provider_error"
            message = (
                REFUSALS[reason]
                if reason == "state"
                else f"{REFUSALS[reason]}: {error.description or error.error}"
            )
            raise SignInRefused(message, reason=reason) from error
        except OSError as error:
            raise SignInRefused(
                REFUSALS["provider_unreachable"], reason="provider_unreachable"
            ) from error
        except Exception as error:  # Authlib/joserfc's token errors: one family per library version
            if not _is_jose_error(error):
                raise
            reason = _reason_for(error)
            raise SignInRefused(REFUSALS[reason], reason=reason) from error
        claims = _claims_from(client, token)
        reauth = request.session.pop(REAUTH_KEY, None)
        if reauth is not None:
            # Only confirms who is signed in already: never links, creates or switches a user.
            return _reauth_finish(request, reauth=reauth, token=token, claims=claims)
        user = oidc_user_resolve(claims=claims)
    except SignInRefused as refusal:
        return _refused(request, refusal, claims=claims)

    next_url = request.session.pop(NEXT_KEY, None) or reverse(settings.LOGIN_REDIRECT_URL)
    login(request, user, backend=BACKEND)
    request.session[AUTH_METHOD_KEY] = AUTH_METHOD_OIDC
    request.session[ID_TOKEN_KEY] = token["id_token"]
    changes = group_roles_apply(user=user, groups=claims.groups, request=request)
    sign_in_event_record(
        method="oidc",
        outcome=SignInOutcome.SUCCEEDED,
        request=request,
        user=user,
        claims=claims,
        message="; ".join(changes)[:300],
    )
    return redirect(safe_next_url(request, next_url))


def _reauth_finish(request, *, reauth: dict, token: dict, claims: OidcClaims):
    auth_time = token["userinfo"].get("auth_time")
    user = request.user
    same_person = (
        user.is_authenticated
        and user.pk == reauth["user"]
        and OidcIdentity.objects.filter(
            user=user, issuer=claims.issuer, subject=claims.subject
        ).exists()
    )
    if not same_person:
        raise SignInRefused(
            "You confirmed as someone else at the identity provider; nothing was changed.",
            reason="reauth_other_user",
        )
    if not isinstance(auth_time, int) or auth_time < reauth["at"] - 5:
        raise SignInRefused(
            "The identity provider did not ask for your sign-in again; nothing was changed.",
            reason="reauth_not_fresh",
        )
    reauth_mark(request)
    request.session[ID_TOKEN_KEY] = token["id_token"]
    sign_in_event_record(
        method="oidc",
        outcome=SignInOutcome.SUCCEEDED,
        request=request,
        user=user,
        claims=claims,
        reason="reauth",
    )
    next_url = request.session.pop(NEXT_KEY, None)
    return redirect(safe_next_url(request, next_url))


def _is_jose_error(error: Exception) -> bool:
    return any(
        cls.__module__.split(".")[0] in {"joserfc", "authlib"} and cls.__name__.endswith("Error")
        for cls in type(error).__mro__
    )


def _refused(request: HttpRequest, refusal: SignInRefused, *, claims=None, detail: str = ""):
    sign_in_event_record(
        method="oidc",
        outcome=SignInOutcome.FAILED,
        request=request,
        reason=refusal.reason,
        message=(refusal.message + (f" ({detail})" if detail else ""))[:300],
        claims=claims,
    )
    context = {"message": refusal.message, "reason": refusal.reason}
    return render(request, "registration/oidc_refused.html", context, status=403)


@require_POST
def logout_view(request: HttpRequest):
    """Log out here, and at the provider too when the person came through it and it offers an
    end-session endpoint (RP-initiated logout)."""
    came_through_provider = request.session.get(AUTH_METHOD_KEY) == AUTH_METHOD_OIDC
    id_token = request.session.get(ID_TOKEN_KEY)
    logout(request)
    login_url = request.build_absolute_uri(reverse(settings.LOGOUT_REDIRECT_URL))
    if came_through_provider and settings.OIDC_ENABLED:
        try:
            end_session = oidc_client().load_server_metadata().get("end_session_endpoint")
        except OSError:
            logger.warning("identity provider unreachable at logout; signed out here only")
            end_session = None
        if end_session:
            params = {"post_logout_redirect_uri": login_url, "client_id": settings.OIDC_CLIENT_ID}
            if id_token:
                params["id_token_hint"] = id_token
            return redirect(f"{end_session}?{urlencode(params)}")
    return redirect(login_url)
