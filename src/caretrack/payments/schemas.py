"""JSON shapes of the credits API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


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


class PurchaseRequest(Strict):
    credits: int = Field(ge=1, le=1000)


class PurchaseOut(BaseModel):
    checkout_url: str | None = Field(None, description="Send the payer here (hosted checkout).")
    balance: int | None = Field(None, description="The new balance (built-in demo top-up).")


class AdjustRequest(Strict):
    action: str = Field(pattern="^(grant|refund)$")
    credits: int = Field(ge=1, le=100_000)
    reason: str = Field(min_length=3, max_length=300)


class AdjustOut(BaseModel):
    transfer_id: str
    balance: int


class WebhookOut(BaseModel):
    result: str
