"""The four roles every floor speaks of: a user holds one; events and routes name them."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PATIENT = "patient"
    DOCTOR = "doctor"
    CARER = "carer"
    ADMIN = "admin"
