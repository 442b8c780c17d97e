"""PDF downloads: a carer's competency and training record, a package's task compliance."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.care.service import package_today, period_of
from caretrack.core import clock
from caretrack.core.roles import Role
from caretrack.http.clients import address_of
from caretrack.http.pagekit import PageRouter
from caretrack.reports import service

pages = PageRouter()


def pdf(data: bytes, filename: str) -> Response:
    return Response(data, media_type="application/pdf", headers={
        "content-disposition": f'attachment; filename="{filename}"'})


@pages.get("/admin/care/packages/{package_id:id}/compliance.pdf", roles=[Role.ADMIN])
async def package_compliance(request: Request, user: User) -> Response:
    package_id = request.path_params["package_id"]
    at = clock.now(request)
    params = request.query_params
    today = await package_today(user, package_id, at)
    start, end = period_of(params.get("start"), params.get("end"), today, default_days=30)
    data = await service.package_compliance_pdf(user, package_id, start, end, request.app.state.settings.agency_name,
                                                address_of(request), at=at)
    return pdf(data, f"package-{package_id}-compliance-{start}-{end}.pdf")


@pages.get("/admin/training/{carer_id:id}/record.pdf", roles=[Role.ADMIN])
async def admin_training_record(request: Request, user: User) -> Response:
    carer_id = request.path_params["carer_id"]
    data = await service.competency_record_pdf(user, carer_id, request.app.state.settings.agency_name,
                                               at=clock.now(request))
    return pdf(data, f"training-record-{carer_id}.pdf")


@pages.get("/carer/record.pdf", roles=[Role.CARER])
async def own_training_record(request: Request, user: User) -> Response:
    data = await service.competency_record_pdf(user, user.id, request.app.state.settings.agency_name,
                                               at=clock.now(request))
    return pdf(data, "my-training-record.pdf")
