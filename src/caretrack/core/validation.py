"""What the database can hold, said once: integer types for input models, the `{name:id}`
path convertor, the rule that text never carries a NUL character, and the generic checks
for text and dates given as form fields or body values (`check_text`, `check_date`), and how
a command model's rule says no (`refuse`), the field rules command models share (`text_field`,
`date_field`, `whole_number`), and how a form or CLI argument list becomes a command
(`parse_command`).

Every id is a Tortoise `IntField` (PostgreSQL `integer`, SQLite accepts the same range), so
an id past 2**31 - 1 names nothing: a path with one is a 404, a field with one a 422, and
neither reaches the driver (asyncpg raises on an out-of-range parameter).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, Field
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError
from starlette.convertors import Convertor, register_url_convertor

from caretrack.core.errors import ValidationError

INT32_MAX = 2**31 - 1  # PostgreSQL `integer`: every id, count and setting column
INT64_MAX = 2**63 - 1  # PostgreSQL `bigint`: sequences

Id = Annotated[int, Field(ge=1, le=INT32_MAX)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
Sequence = Annotated[int, Field(ge=0, le=INT64_MAX)]

ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": INT32_MAX}
NUL_MESSAGE = "must not contain the NUL character (\\u0000) or an unpaired surrogate (\\ud800-\\udfff); remove it"


def unstorable(text: str) -> bool:
    """Text no column can hold: NUL (PostgreSQL refuses it) or a lone surrogate, which JSON's
    \\ud800 escapes can produce and which has no UTF-8 encoding (it cannot be encrypted either)."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def decimal_range_regex(maximum: int) -> str:
    """A regex matching the decimal numbers 1..`maximum` written without leading zeros."""
    digits = str(maximum)
    width = len(digits)
    branches = [f"[1-9][0-9]{{0,{width - 2}}}"] if width > 1 else []
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = width - i - 1
            branches.append(f"{digits[:i]}[{low}-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    branches.append(digits)
    return "(?:" + "|".join(branches) + ")"


class IdConvertor(Convertor[int]):
    """`{name:id}`: a path segment that can name a row; anything else matches no route (404)."""

    regex = decimal_range_regex(INT32_MAX)

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        value = int(value)
        assert 1 <= value <= INT32_MAX, f"An id is between 1 and {INT32_MAX}, not {value}"
        return str(value)


# Routes compile their path when they are built; api.py imports this module before any is.
register_url_convertor("id", IdConvertor())


_ID_PATTERN = re.compile(IdConvertor.regex + r"\Z")


def id_from_text(value: str | None, name: str) -> int | None:
    """An id given as text (a page's query string or form): None when blank, else 1..INT32_MAX or a 422."""
    if value is None or value == "":
        return None
    if not _ID_PATTERN.match(value):
        raise ValidationError(f"'{name}' must be an id (a whole number from 1 to {INT32_MAX}), not '{value[:20]}'.",
                              fields=[{"field": name, "message": f"must be a whole number from 1 to {INT32_MAX}"}])
    return int(value)


def nul_locations(data: Any, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Where in parsed input (JSON or a query) a string is `unstorable`."""
    if isinstance(data, str):
        if unstorable(data):
            yield loc
    elif isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and unstorable(key):
                yield (*loc, key)
            else:
                yield from nul_locations(value, (*loc, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from nul_locations(value, (*loc, index))


def check_text(value: Any, what: str, *, max_length: int, required: bool = True) -> str | None:
    """Text from a form or a body, stripped: None when blank and not required, else a 422 naming `what`."""
    text = ("" if value is None else str(value)).strip()
    if not text:
        if required:
            raise ValidationError(f"The {what} is required.")
        return None
    if len(text) > max_length:
        raise ValidationError(f"The {what} is longer than {max_length} characters.")
    return text


FIRST_DATE, LAST_DATE = date(1900, 1, 1), date(2199, 12, 31)


def check_date(value: Any, what: str, *, required: bool = True) -> date | None:
    """A date from FIRST_DATE to LAST_DATE, or text in YYYY-MM-DD: None when blank and not
    required, else a 422 naming `what`. (Years 1 and 9999 overflow every zone's arithmetic.)"""
    if isinstance(value, date):
        day = value
    else:
        text = ("" if value is None else str(value)).strip()
        if not text:
            if required:
                raise ValidationError(f"The {what} is required (YYYY-MM-DD).")
            return None
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValidationError(f"The {what} '{text[:20]}' is not a date (YYYY-MM-DD).") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ValidationError(f"The {what} {day.isoformat()} is out of range: give a date from {FIRST_DATE} "
                              f"to {LAST_DATE}.")
    return day


C = TypeVar("C", bound=BaseModel)


def refuse(kind: str, message: str) -> PydanticCustomError:
    """Raised by a command model's validator: a validation error whose message is exactly
    `message` (it may quote user input), reported at the field the validator checks."""
    return PydanticCustomError(kind, "{message}", {"message": message})


def domain_rule(check: Callable[..., Any]) -> Callable[..., Any]:
    """For a command model's validator that calls the domain's checks (`check_text`...): their
    ValidationError becomes pydantic's error at the field being validated, with the same
    sentence, so the API lists it in `fields` beside the other wrong fields (pydantic would
    otherwise let it escape and hide them)."""
    @functools.wraps(check)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return check(*args, **kwargs)
        except ValidationError as exc:
            raise refuse("invalid", exc.message) from None
    return run


def has_nul(value: Any) -> bool:
    """Text holding NUL is refused by the edge (caretrack.http.apikit.parse_model, pagekit.read_form)
    field by field; the field rules below leave it to that rule so every such field is named."""
    if isinstance(value, str):
        return unstorable(value)
    return isinstance(value, list) and any(has_nul(v) for v in value)


def text_field(what: str, max_length: int, *, required: bool = True) -> BeforeValidator:
    """A command's text field checked by `check_text` (stripped, blank is None); other types are
    left to pydantic."""
    @domain_rule
    def check(value: Any) -> Any:
        if value is None or (isinstance(value, str) and not has_nul(value)):
            return check_text(value, what, max_length=max_length, required=required)
        return value
    return BeforeValidator(check)


def date_field(what: str, *, required: bool = True) -> BeforeValidator:
    """A command's date field checked by `check_date`; other types are left to pydantic."""
    @domain_rule
    def check(value: Any) -> Any:
        if value is None or (isinstance(value, str) and not has_nul(value)):
            return check_date(value, what, required=required)
        return value
    return BeforeValidator(check)


def whole_number(what: str, low: int, high: int) -> BeforeValidator:
    """A command's whole number from `low` to `high`, given as a number or as a form's text, refused
    with a sentence naming `what`; other types are left to pydantic."""
    @domain_rule
    def check(value: Any) -> Any:
        if isinstance(value, str) and not has_nul(value):
            try:
                value = int(value)
            except ValueError:
                raise ValidationError(f"The {what} '{value[:20]}' is not a whole number.") from None
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            raise ValidationError(f"The {what} must be between {low} and {high}, not {value}.")
        return value
    return BeforeValidator(check)


def parse_command(model: type[C], data: Mapping[str, Any], *, messages: Mapping[str, str] | None = None) -> C:
    """`data` (a page's form, the CLI's arguments) as the command `model`, or a ValidationError
    whose message is the first problem's own sentence, what a page shows, with every wrong
    field in `fields`; `messages` words a field's problem for this page (a select box's
    "Choose a role.")."""
    try:
        return model.model_validate(dict(data))
    except PydanticValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            name = ".".join(str(p) for p in error["loc"]) or "form"
            problems.setdefault(name, (messages or {}).get(name, error["msg"]))
        raise ValidationError(next(iter(problems.values())),
                              fields=[{"field": k, "message": v} for k, v in problems.items()]) from None


class Problems:
    """Every problem of one form or command, field by field, so it is refused once with all of
    them (ValidationError.fields) rather than one per submit:

        problems = Problems()
        with problems.check("start_0"):
            parse_hhmm(text, "start time")
        problems.raise_any()

    A check that fails records its sentence under `field` (or, for an error that names its own
    fields, under those) and the code after the `with` block goes on; the first problem of a
    field is the one kept."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self.fields)

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(field, message)

    @contextlib.contextmanager
    def check(self, field: str) -> Iterator[None]:
        try:
            yield
        except ValidationError as exc:
            for item in exc.fields or [{"field": field, "message": exc.message}]:
                self.add(str(item["field"]), str(item["message"]))

    def raise_any(self) -> None:
        """A ValidationError listing every problem (its message: their sentences, in order)."""
        if self.fields:
            raise ValidationError(" ".join(dict.fromkeys(self.fields.values())),
                                  fields=[{"field": k, "message": v} for k, v in self.fields.items()])
