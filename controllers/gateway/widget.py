"""The embeddable feedback widget: its script (``GET /widget/kaizen-feedback.js``) and the cross-origin
access its posts need (``FeedbackCors``).

The widget runs on the agent UI's origin, not the gateway's, so its ``POST /v1/feedback/batch`` is a
cross-origin request with an ``Authorization`` header: the browser sends a preflight first and lets the
page read the answer only if the gateway allows that origin. ``KAIZEN_WIDGET_ORIGINS`` lists the origins
allowed, exactly (``https://app.example.com``, no wildcard); empty, the default, allows none.

What was compared: Starlette's ``CORSMiddleware`` gets the protocol details right (preflight checks of
origin, method and each requested header, ``Vary: Origin``, no credentials unless asked), but it applies
to every path of the app it wraps: an allowed origin could then preflight ``POST /v1/runs/batch`` or
``/v1/pairs/batch`` too. A hand-written middleware could be limited to one path but would repeat that
protocol. ``FeedbackCors`` does both: it routes only the feedback path through a ``CORSMiddleware``
configured for what the widget sends (POST; Authorization, Content-Type, Idempotency-Key; no
credentials), and every other path straight past it, so nothing else answers any origin. It must sit
outside ``guard.RequireIdentity``: a preflight carries no token, and the guard's 401 for an expired
token needs the Allow-Origin header for the widget to be able to show why.

The token the widget carries is public (anyone can read the page), so it is a feedback-role token
(``controllers.decisions.access``): CORS keeps other sites' pages from using it in their visitors'
browsers, but anyone can still send it with curl; what it can do at all is what bounds the harm.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from importlib.resources import files
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.middleware.cors import CORSMiddleware

ORIGINS_ENV = "KAIZEN_WIDGET_ORIGINS"
FEEDBACK_PATHS = frozenset({"/v1/feedback/batch"})
SCRIPT = "kaizen-feedback.js"
# scheme://host[:port] as a browser sends it in Origin: lower case, no path, no trailing slash.
ORIGIN = re.compile(
    r"https?://([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(:\d{1,5})?"
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

router = APIRouter(prefix="/widget", include_in_schema=False)


def parse_origins(value: str) -> tuple[str, ...]:
    """The comma-separated exact origins of ``KAIZEN_WIDGET_ORIGINS`` (ValueError naming a bad one)."""
    origins = tuple(part.strip() for part in value.split(",") if part.strip())
    for origin in origins:
        if not ORIGIN.fullmatch(origin):
            raise ValueError(
                f"{ORIGINS_ENV}: {origin!r} is not an origin; list each as scheme://host[:port], lower case,"
                " with no path and no wildcard (e.g. https://app.example.com)"
            )
    return origins


class FeedbackCors:
    """Starlette's CORSMiddleware for the feedback path alone; every other path never sees it."""

    def __init__(self, app: Any, origins: tuple[str, ...]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            allow_credentials=False,  # the token is in a header; cookies (the /ui/ session) never cross
            expose_headers=["Retry-After"],
            max_age=600,
        )
        self.enabled = bool(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.enabled and scope["type"] == "http" and scope["path"] in FEEDBACK_PATHS:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


@router.get(f"/{SCRIPT}")
async def script() -> Response:
    body = (files("controllers.gateway") / "widget_static" / SCRIPT).read_bytes()
    response = Response(body, media_type="text/javascript; charset=utf-8")
    response.headers.update(
        {
            "X-Content-Type-Options": "nosniff",
            # Other origins embed it with <script src>: say so, for pages that require it (COEP).
            "Cross-Origin-Resource-Policy": "cross-origin",
            "Cache-Control": "public, max-age=300",
        }
    )
    return response
