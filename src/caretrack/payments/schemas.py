"""Typed commands and views of credits: one command per action, parsed once at the edge by the
API (JSON) and the page (form) alike, and handed to the service as it is.

The commands' rules are the domain's sentences, reported at their field through `domain_rule`
(a page shows the first, the API lists every wrong field); type errors stay pydantic's. A form
sends text: a command's number field takes it too, and says so when it is not a number."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from caretrack.core.errors import ValidationError
from caretrack.core.validation import domain_rule

MAX_PURCHASE = 1000
MAX_ADJUSTMENT = 100_000
ACTIONS = ("grant", "refund")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EntryOut(BaseModel):
    transfer_id: str
    amount: int
    kind: str
    memo: str
    appointment_id: int | None
    created_at: datetime


class Statement(BaseModel):
    balance: int = Field(description="Patients: spendable credits. Doctors: earnings.")
    pending: int = Field(0, description="Doctors: fees of booked appointments not yet earned.")
    entries: list[EntryOut]


def _credits(low: int, high: int, message: str) -> Any:
    """A whole number from `low` to `high`; a form's text (blank counts as 0) is read as one."""
    @domain_rule
    def check(value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = int(value.strip() or "0")
            except ValueError:
                raise ValidationError("Give a whole number of credits.") from None
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            raise ValidationError(message)
        return value
    return BeforeValidator(check)


@domain_rule
def _action(value: Any) -> Any:
    if isinstance(value, str) and value not in ACTIONS:
        raise ValidationError(f"The action is 'grant' or 'refund', not '{value}'.")
    return value


@domain_rule
def _reason(value: Any) -> Any:
    """Stripped, 3 to 300 characters: the patient reads it on their statement."""
    if isinstance(value, str):
        value = value.strip()
        if not 3 <= len(value) <= 300:
            raise ValidationError("Give a reason (3 to 300 characters); the patient sees it on their statement.")
    return value


# Buy credits: a hosted checkout with a payment provider, else the built-in demo top-up.
# (Comments, not docstrings: a docstring would become the schema's description in the OpenAPI document.)
class PurchaseRequest(Strict):
    credits: Annotated[int, _credits(1, MAX_PURCHASE, f"Buy between 1 and {MAX_PURCHASE} credits at a time.")] \
        = Field(ge=1, le=MAX_PURCHASE)


class PurchaseOut(BaseModel):
    checkout_url: str | None = Field(None, description="Send the payer here (hosted checkout).")
    balance: int | None = Field(None, description="The new balance (built-in demo top-up).")


# An admin grants credits to a patient, or refunds them (takes them out of the wallet because
# the money went back to the payer outside CareTrack).
class AdjustRequest(Strict):
    action: Annotated[str, BeforeValidator(_action)] = Field(pattern="^(grant|refund)$")
    credits: Annotated[int, _credits(1, MAX_ADJUSTMENT, f"Give between 1 and {MAX_ADJUSTMENT} credits.")] \
        = Field(ge=1, le=MAX_ADJUSTMENT)
    reason: Annotated[str, BeforeValidator(_reason)] = Field(min_length=3, max_length=300)


class AdjustOut(BaseModel):
    transfer_id: str
    balance: int


class WebhookOut(BaseModel):
    result: str
