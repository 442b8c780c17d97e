"""Credits pages: receipts, and the admin's grants and refunds. The wallet page (/credits)
is booking's, since it shows the calendar feed too (booking/pages.py)."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.core.errors import CareTrackError
from caretrack.core.roles import Role
from caretrack.core.validation import parse_command
from caretrack.http.clients import address_of
from caretrack.http.pagekit import PageRouter, render
from caretrack.payments import ledger, service
from caretrack.payments.schemas import AdjustRequest

pages = PageRouter()


@pages.get("/credits/receipts/{transfer_id:str}", roles=None)
async def receipt(request: Request, user: User) -> Response:
    transfer_id = request.path_params["transfer_id"].removesuffix(".pdf")
    body = await service.receipt_pdf(request.app.state.settings, user, transfer_id)
    return Response(body, media_type="application/pdf", headers={
        "content-disposition": f'attachment; filename="receipt-{transfer_id}.pdf"'})


@pages.get("/admin/credits", roles=[Role.ADMIN])
async def admin_credits(request: Request, flashes: list[tuple[str, str]] | None = None,
                        status: int = 200) -> Response:
    return render(request, "payments/admin_credits.html", {}, status_code=status, flashes=flashes)


@pages.post("/admin/credits", roles=[Role.ADMIN])
async def admin_adjust(request: Request, user: User, form: FormData) -> Response:
    try:
        subject = await service.patient_by_email(str(form.get("email", "")))
        command = parse_command(AdjustRequest, {name: str(form.get(name, "")) for name in ("action", "credits",
                                                                                           "reason")})
        await service.do_admin_adjust(user, subject.id, command, address_of(request))
        balance = await ledger.balance(ledger.credits(subject.id))
        return await admin_credits(request, [("success", f"Done: {subject.full_name} now has {balance} credits.")])
    except CareTrackError as exc:
        return await admin_credits(request, [("error", exc.message)], exc.status_code)
