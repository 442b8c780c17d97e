"""Each role's home page after login."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.booking.pages import doctor_context
from caretrack.booking.service import list_appointments
from caretrack.booking.zones import working_zone
from caretrack.care.pages import carer_dashboard_context
from caretrack.core import clock
from caretrack.core.roles import Role
from caretrack.http.pagekit import PageRouter, render
from caretrack.payments.service import balance_of

pages = PageRouter()


@pages.get("/patient", roles=[Role.PATIENT])
async def patient_home(request: Request, user: User) -> Response:
    return render(request, "dashboards/patient.html", {
        "user": user, "balance": await balance_of(user), "tz": await working_zone(user),
        "upcoming": await list_appointments(user, upcoming=True, limit=20, at=clock.now(request))})


@pages.get("/doctor", roles=[Role.DOCTOR])
async def doctor_home(request: Request, user: User) -> Response:
    context = await doctor_context(user, clock.now(request))
    return render(request, "dashboards/doctor.html", {"user": user, "form": {}, **context})


@pages.get("/carer", roles=[Role.CARER])
async def carer_home(request: Request, user: User) -> Response:
    return render(request, "dashboards/carer.html", {"user": user, **await carer_dashboard_context(request, user)})


@pages.get("/admin", roles=[Role.ADMIN])
async def admin_home(request: Request, user: User) -> Response:
    counts = {role.value: await User.filter(role=role, is_active=True).count() for role in Role}
    return render(request, "dashboards/admin.html", {"user": user, "counts": counts})
