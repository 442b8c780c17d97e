"""Jinja2 templates and static files, shipped inside the package as `caretrack.web`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from caretrack.core import timetext

WEB_DIR = Path(str(files("caretrack.web")))
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

NAV_LINKS: dict[str, list[tuple[str, str]]] = {
    "patient": [("Dashboard", "/patient"), ("Find a doctor", "/doctors"), ("Credits", "/credits"),
                ("Messages", "/messages"), ("Profile", "/account")],
    "doctor": [("Dashboard", "/doctor"), ("Earnings", "/credits"), ("Messages", "/messages"), ("Profile", "/account")],
    "carer": [("Dashboard", "/carer"), ("Progress", "/carer/progress"), ("Training", "/carer/record"),
              ("Messages", "/messages"), ("Profile", "/account")],
    "admin": [("Dashboard", "/admin"), ("Users", "/admin/users"), ("Doctors", "/admin/doctors"),
              ("Credits", "/admin/credits"), ("Activity", "/admin/activity"), ("Care", "/admin/care"),
              ("Assessments", "/admin/assessments"), ("Training", "/admin/training"),
              ("Outbound", "/admin/outbound"), ("Messages", "/messages"), ("Profile", "/account")],
}
# Counts shown beside a navigation link ({href: count}), put in the request's state by
# http.middleware.NavBadgesMiddleware from what site gives it (the unread messages).
NAV_BADGES_STATE = "nav_badges"


def _page_context(request: Request) -> dict[str, Any]:
    user = getattr(request.state, "user", None)
    session = getattr(request.state, "session", None)
    return {
        "current_user": user,
        "csrf_token": session.csrf_token if session is not None else None,
        "nav_links": NAV_LINKS.get(str(user.role), []) if user is not None else [],
        "nav_badges": request.state._state.get(NAV_BADGES_STATE) or {},
    }


templates = Jinja2Templates(directory=str(TEMPLATES_DIR), context_processors=[_page_context])
@pass_context
def field_error(context: Context, name: str) -> Markup:
    """The refused form's message for field `name` (pagekit.render's `errors`), shown under its input;
    nothing when the field is fine."""
    message = (context.get("field_errors") or {}).get(name)
    if not message:
        return Markup("")
    return Markup('<p class="field-error" id="{}-error" role="alert">{}</p>').format(name, escape(message))


templates.env.globals["field_error"] = field_error
# Every page shows instants through these (caretrack.core.timetext): with the zone, in the locale.
templates.env.globals.update(show=timetext.show, show_span=timetext.show_span, show_day=timetext.show_day)
