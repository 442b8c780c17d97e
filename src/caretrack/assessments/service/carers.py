"""Carers as the care domains name them: active users with the carer role. Assessments and
care packages both assign work to them (care imports this; nothing here imports care)."""

from __future__ import annotations

from caretrack.accounts.models import User
from caretrack.core.errors import ValidationError
from caretrack.core.roles import Role


async def check_carer(carer_id: int | None) -> User:
    """The active carer a command names."""
    if carer_id is None:
        raise ValidationError("Choose a carer.", fields=[{"field": "carer_id", "message": "missing"}])
    carer = await User.get_or_none(id=carer_id, role=Role.CARER, is_active=True)
    if carer is None:
        raise ValidationError(f"There is no active carer with id {carer_id}.")
    return carer


async def active_carers() -> list[User]:
    return list(await User.filter(role=Role.CARER, is_active=True).order_by("full_name"))
