"""The pages' shared HTML: the shell every page sits in, and the sign-in, refusal and index pages.

Everything here is written from Python with every value passed through ``text`` (scrubbed of PII and
secrets as the review queue is, then HTML-escaped), so nothing a caller wrote reaches the page as
markup. There is no inline script or style: ``ui_static/ui.js`` and ``ui.css`` are the only assets,
which the Content-Security-Policy (``ui_session``) relies on. The shell gives every page a skip link,
one ``main`` landmark with one ``h1``, a theme toggle, and who is signed in with a sign-out button.
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape

from fastapi.responses import HTMLResponse

from controllers.api.identity import Principal
from controllers.data.pii import scrub
from controllers.gateway.ui_session import secure

# An ISO 8601 time as the operator and the store write them (extended format only, so that no run of
# digits a person typed counts as one).
MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?")


def is_moment(value: str) -> bool:
    """Whether ``value`` is one whole, valid timestamp (and so holds no personal data)."""
    if MOMENT.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def text(value: object) -> str:
    """Any value as safe page text: scrubbed, then escaped (quotes too: it may sit in an attribute).

    A timestamp is shown as it is: the phone rules would read its seconds and microseconds
    (``...:02.413610+00:00``) as a number and print ``[PHONE]`` in the middle of a time."""
    shown = str(value)
    return escape(shown if is_moment(shown) else scrub(shown), quote=True)


def number(value: object) -> str:
    """The page's one way of writing a figure: integers as they are, others to 3 decimals, '—' for none."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return text(value)


def _who(person: Principal | None) -> str:
    if person is None:
        return ""
    role = person.role.value if person.role is not None else "Kubernetes identity"
    return (
        '<a href="/ui/review">Review</a>'
        f'<p class="who">Signed in as <strong>{text(person.subject)}</strong> ({text(role)})</p>'
        '<form method="post" action="/ui/sign-out" class="inline">'
        '<button type="submit">Sign out</button></form>'
    )


def page(title: str, body: str, person: Principal | None = None, status: int = 200) -> HTMLResponse:
    """A whole page around ``body`` (already safe HTML)."""
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{text(title)} · Kaizen</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/static/ui.css">
<script src="/ui/static/ui.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="bar">
<a class="brand" href="/ui/">Kaizen</a>
<button type="button" id="theme-toggle" class="toggle" aria-pressed="false">Dark theme</button>
{_who(person)}
</header>
<main id="main" tabindex="-1">
<h1>{text(title)}</h1>
{body}
</main>
</body>
</html>
"""
    return secure(HTMLResponse(html, status_code=status))


def sign_in_page(problem: str = "", status: int = 200) -> HTMLResponse:
    alert = f'<p class="problem" role="alert" id="sign-in-problem">{text(problem)}</p>' if problem else ""
    described = (
        ' aria-describedby="token-help sign-in-problem"' if problem else ' aria-describedby="token-help"'
    )
    body = f"""{alert}
<form method="post" action="/ui/sign-in" class="card sign-in">
<label for="token">Kaizen token</label>
<input id="token" name="token" type="password" autocomplete="off" required spellcheck="false"{described}>
<p id="token-help" class="help">Paste a reviewer, operator or admin token
(<code>kaizen token create --subject YOU --role reviewer -n NAMESPACE</code>). It is kept in a cookie
no script can read, for as long as the token is valid.</p>
<button type="submit">Sign in</button>
</form>"""
    return page("Sign in", body, status=status)


def refused_page(reason: str, status: int = 403) -> HTMLResponse:
    body = f"""<p class="problem" role="alert">{text(reason)}</p>
<p><a href="/ui/sign-in">Sign in with another token</a></p>"""
    return page("Not for this identity", body, status=status)


def not_found_page(what: str, person: Principal) -> HTMLResponse:
    body = f'<p class="problem" role="alert">{text(what)}</p><p><a href="/ui/">All policies</a></p>'
    return page("Not found", body, person, status=404)


def index_page(policies: list[tuple[str, str]], person: Principal) -> HTMLResponse:
    if policies:
        items = "\n".join(
            f'<li><a href="/ui/loop/{text(ns)}/{text(name)}">{text(ns)}/{text(name)}</a></li>'
            for ns, name in policies
        )
        listing = f'<ul class="policies">{items}</ul>'
    else:
        listing = "<p>No LearningPolicy of your namespaces has been synced to the store yet.</p>"
    body = f"""<section aria-labelledby="policies-h">
<h2 id="policies-h">Learning policies</h2>
<p>Each policy's loop dashboard: data coming in, preference pairs, experiments and their decisions.</p>
{listing}
</section>
<section aria-labelledby="review-h">
<h2 id="review-h">Review</h2>
<p><a href="/ui/review">Review workbench</a>: judge pairs of answers side by side, blind, by keyboard.</p>
</section>"""
    return page("Kaizen", body, person)
