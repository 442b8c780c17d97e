"""Each role's home page after login."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import Role, User
from caretrack.pagekit import PageRouter, render

pages = PageRouter()


@pages.get("/patient", roles=[Role.PATIENT])
async def patient_home(request: Request, user: User) -> Response:
    return render(request, "dashboards/patient.html", {"user": user})


@pages.get("/doctor", roles=[Role.DOCTOR])
async def doctor_home(request: Request, user: User) -> Response:
    return render(request, "dashboards/doctor.html", {"user": user})


@pages.get("/carer", roles=[Role.CARER])
async def carer_home(request: Request, user: User) -> Response:
    return render(request, "dashboards/carer.html", {"user": user})


@pages.get("/admin", roles=[Role.ADMIN])
async def admin_home(request: Request, user: User) -> Response:
    counts = {role.value: await User.filter(role=role, is_active=True).count() for role in Role}
    return render(request, "dashboards/admin.html", {"user": user, "counts": counts})
