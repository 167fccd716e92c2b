"""Who is looking at a page under ``/ui/``: a Kaizen token pasted once, then kept in an HttpOnly cookie.

The pages are for people (reviewers, operators, admins); an agent's token opens none of them. The
cookie holds the token itself, so every replica verifies it as it verifies a bearer token (keyring,
expiry, revocation list) and there is no server-side session to share or leak: it is HttpOnly (no
script reads it), SameSite=Strict (no other site's page sends it), Secure when the page came over
https, and it dies with the token (``Max-Age`` is the token's remaining life). The token never
appears in a URL or in localStorage.

Requests that change something (sign-in, sign-out) must also say they come from our own pages: an
``Origin`` equal to the gateway's own, or, without one, ``Sec-Fetch-Site: same-origin``. SameSite
already keeps a foreign page's cookie-carrying request out; the header check also refuses a forged
sign-in (login CSRF), which carries no cookie at all. The bearer-token API under ``/v1/`` is not
touched: it never reads this cookie.
"""

from __future__ import annotations

import time
from typing import TypeVar
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from controllers.api.identity import Principal, Role
from controllers.decisions.access import Action
from controllers.gateway.identity import Authenticator, AuthUnavailable, Forbidden, Unauthenticated

COOKIE = "kaizen_session"
PEOPLE = (Role.REVIEWER, Role.OPERATOR, Role.ADMIN)
NEEDED = (
    "a reviewer, operator or admin token (kaizen token create --subject YOU --role reviewer -n NAMESPACE)"
)
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


AnyResponse = TypeVar("AnyResponse", bound=Response)


class NotAPerson(Exception):
    """The identity is valid but may not open these pages (an agent): 403, saying what is needed."""


def refusal_for_people(principal: Principal) -> str | None:
    """Why ``principal`` may not open the pages; None when it may."""
    if principal.from_kubernetes or principal.role in PEOPLE:
        return None
    return f"{principal.subject} holds a token of role {principal.role}; these pages need {NEEDED}"


async def refusal_to(
    authenticator: Authenticator, person: Principal, action: Action, namespace: str
) -> str | None:
    """Why ``person`` may not take ``action`` in ``namespace`` (a Kaizen token by its role, anyone else
    by a SubjectAccessReview); None when they may. Every page asks before it shows a namespace's data,
    names included."""
    try:
        await authenticator.authorize(person, action, namespace)
    except Forbidden as error:
        return str(error)
    except AuthUnavailable as error:
        return f"cannot check your access right now: {error}"
    return None


async def sign_in_with(authenticator: Authenticator, token: str) -> Principal:
    """The person ``token`` names (Unauthenticated, AuthUnavailable or NotAPerson if none)."""
    token = token.strip()
    if not token:
        raise Unauthenticated("paste a token: the field was empty")
    principal = await authenticator.authenticate(f"Bearer {token}")
    reason = refusal_for_people(principal)
    if reason is not None:
        raise NotAPerson(reason)
    return principal


async def current_person(request: Request, authenticator: Authenticator) -> Principal | None:
    """The signed-in person, or None (no cookie, or one whose token no longer verifies)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        principal = await authenticator.authenticate(f"Bearer {token}")
    except (Unauthenticated, AuthUnavailable):
        return None
    return principal if refusal_for_people(principal) is None else None


def remember(response: Response, request: Request, token: str, principal: Principal) -> None:
    left = int((principal.expires_at or time.time() + 3600) - time.time())
    response.set_cookie(
        COOKIE,
        token.strip(),
        max_age=max(left, 1),
        path="/ui/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def forget(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path="/ui/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


def same_origin(request: Request) -> bool:
    """Whether a state-changing request says it comes from one of our own pages."""
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site") == "same-origin"
    own = urlsplit(str(request.base_url))
    found = urlsplit(origin)
    return (found.scheme, found.netloc) == (own.scheme, own.netloc)


def secure(response: AnyResponse) -> AnyResponse:
    response.headers.update(SECURITY_HEADERS)
    return response
