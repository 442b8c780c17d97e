"""Consultation types on pages: a doctor's own at /doctor/consultation-types, any doctor's for
an admin at /admin/consultation-types?doctor_id=…; every form posts to /consultation-types/…
and comes back to the page it came from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.core import clock
from caretrack.core.errors import CareTrackError
from caretrack.core.roles import Role
from caretrack.core.validation import id_from_text
from caretrack.http.pagekit import PageRouter, redirect, render
from caretrack.intake import forms, service
from caretrack.intake.models import QuestionKind

pages = PageRouter()
EDITORS = [Role.DOCTOR, Role.ADMIN]
KIND_LABELS = {QuestionKind.SHORT_TEXT: "Short text", QuestionKind.LONG_TEXT: "Long text",
               QuestionKind.YES_NO: "Yes or no", QuestionKind.CHOICE: "One of several choices"}


def _doctor_filter(request: Request, user: User, form: FormData | None = None) -> int | None:
    if user.role != Role.ADMIN:
        return user.id
    raw = form.get("back_doctor_id") if form is not None else request.query_params.get("doctor_id")
    return id_from_text(raw if isinstance(raw, str) else None, "doctor_id")


def _page_url(user: User, doctor_id: int | None) -> str:
    if user.role != Role.ADMIN:
        return "/doctor/consultation-types"
    return "/admin/consultation-types" + (f"?doctor_id={doctor_id}" if doctor_id else "")


async def _page(request: Request, user: User, doctor_id: int | None, flashes: list[tuple[str, str]] | None = None,
                status: int = 200) -> Response:
    if flashes is None and request.query_params.get("done"):
        flashes = [("success", "Saved.")]
    doctors = await User.filter(role=Role.DOCTOR).order_by("full_name") if user.role == Role.ADMIN else []
    return render(request, "intake/types.html", {
        "types": await service.list_types(user, doctor_id), "is_admin": user.role == Role.ADMIN,
        "doctor_id": doctor_id, "doctors": doctors, "kinds": KIND_LABELS,
        "doctor_names": {d.id: d.full_name for d in doctors},
    }, status_code=status, flashes=flashes)


@pages.get("/doctor/consultation-types", roles=[Role.DOCTOR])
async def doctor_types(request: Request, user: User) -> Response:
    return await _page(request, user, user.id)


@pages.get("/admin/consultation-types", roles=[Role.ADMIN])
async def admin_types(request: Request, user: User) -> Response:
    return await _page(request, user, _doctor_filter(request, user))


async def _act(request: Request, user: User, form: FormData, action: Callable[[], Awaitable[object]],
               done: str) -> Response:
    doctor_id = _doctor_filter(request, user, form)
    try:
        await action()
    except CareTrackError as exc:
        return await _page(request, user, doctor_id, [("error", exc.message)], exc.status_code)
    return redirect(_page_url(user, doctor_id) + ("&" if "?" in _page_url(user, doctor_id) else "?")
                    + f"done={done}")


@pages.post("/consultation-types", roles=EDITORS)
async def create_type(request: Request, user: User, form: FormData) -> Response:
    return await _act(request, user, form, lambda: service.do_create_type(user, forms.new_type(form),
                                                                           at=clock.now(request)), "type")


@pages.post("/consultation-types/{type_id:id}", roles=EDITORS)
async def update_type(request: Request, user: User, form: FormData) -> Response:
    type_id = request.path_params["type_id"]
    return await _act(request, user, form, lambda: service.do_update_type(user, type_id, forms.type_update(form),
                                                                           at=clock.now(request)), "type")


@pages.post("/consultation-types/{type_id:id}/questions", roles=EDITORS)
async def add_question(request: Request, user: User, form: FormData) -> Response:
    type_id = request.path_params["type_id"]
    return await _act(request, user, form, lambda: service.do_add_question(user, type_id, forms.question(form)),
                      "question")


@pages.post("/intake-questions/{question_id:id}", roles=EDITORS)
async def update_question(request: Request, user: User, form: FormData) -> Response:
    question_id = request.path_params["question_id"]
    if form.get("action") == "delete":
        return await _act(request, user, form, lambda: service.do_delete_question(user, question_id), "question")
    return await _act(request, user, form,
                      lambda: service.do_update_question(user, question_id, forms.question(form)), "question")


@pages.post("/consultation-types/{type_id:id}/consents", roles=EDITORS)
async def add_consent(request: Request, user: User, form: FormData) -> Response:
    type_id = request.path_params["type_id"]
    return await _act(request, user, form, lambda: service.do_add_consent(user, type_id, forms.consent(form),
                                                                           at=clock.now(request)), "consent")


@pages.post("/consent-documents/{document_id:id}", roles=EDITORS)
async def update_consent(request: Request, user: User, form: FormData) -> Response:
    document_id = request.path_params["document_id"]
    if form.get("action") == "retire":
        return await _act(request, user, form, lambda: service.do_retire_consent(user, document_id), "consent")
    return await _act(request, user, form, lambda: service.do_update_consent(user, document_id, forms.consent(form),
                                                                             at=clock.now(request)), "consent")
