"""The definition pages' forms as intake's commands (the same ones the API takes)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData

from caretrack.core.validation import parse_command
from caretrack.intake.schemas import ConsentIn, QuestionIn, TypeIn, TypeUpdate


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _blank_none(form: FormData, name: str) -> str | None:
    return _text(form, name).strip() or None


def _checked(form: FormData, name: str) -> bool:
    return _text(form, name) in ("on", "yes", "true")


def new_type(form: FormData) -> TypeIn:
    return parse_command(TypeIn, {"name": _text(form, "name"), "description": _text(form, "description"),
                                  "doctor_id": _blank_none(form, "doctor_id")})


def type_update(form: FormData) -> TypeUpdate:
    return parse_command(TypeUpdate, {"name": _text(form, "name"), "description": _text(form, "description"),
                                      "archived": _checked(form, "archived")})


def question(form: FormData) -> QuestionIn:
    data: dict[str, Any] = {
        "kind": _text(form, "kind"), "prompt": _text(form, "prompt"), "required": _checked(form, "required"),
        "max_length": _blank_none(form, "max_length"), "position": _blank_none(form, "position"),
        "choices": [line.strip() for line in _text(form, "choices").splitlines() if line.strip()],
    }
    return parse_command(QuestionIn, data, messages={"kind": "Choose the kind of question.",
                                                     "max_length": "The answer limit is a whole number from 1 "
                                                                   "to 5000.",
                                                     "position": "The position is a whole number from 0 to 1000."})


def consent(form: FormData) -> ConsentIn:
    return parse_command(ConsentIn, {"title": _text(form, "title"), "text": _text(form, "text")})
