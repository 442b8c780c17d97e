"""Schemathesis against /api/v1/openapi.json of the real app on PostgreSQL, as each role:
valid and invalid (negative) input for every operation must give no server error, only
documented status codes, and bodies that match the documented schemas.

Bounded and reproducible: a few derandomized examples per operation, role and mode, no
shrinking. For a longer local hunt, CARETRACK_FUZZ_EXAMPLES raises the count and
CARETRACK_FUZZ_SEED draws other cases (seeded, so a failure found is found again).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import hypothesis
import pyotp
import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from caretrack.accounts import service
from caretrack.accounts.models import User
from caretrack.accounts.schemas import TokenCreate
from caretrack.booking.models import ApplicationStatus, DoctorProfile
from caretrack.core import crypto
from caretrack.core.roles import Role
from tests.booking.conftest import make_doctor, make_patient

pytestmark = pytest.mark.postgres

EXAMPLES = int(os.environ.get("CARETRACK_FUZZ_EXAMPLES", "6"))
SEED = os.environ.get("CARETRACK_FUZZ_SEED")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = {
    schemathesis.GenerationMode.POSITIVE: CHECKS,
    # Invalid input must be refused with a 4xx, never accepted nor answered with a 5xx.
    schemathesis.GenerationMode.NEGATIVE: [*CHECKS, negative_data_rejection],
}
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=SEED is None,  # the same cases on every run: CI failures reproduce
    database=None,
    deadline=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # no shrinking: bounded time
    suppress_health_check=list(hypothesis.HealthCheck),
)


@pytest.fixture
def settings(pg_database_url):
    """The live server runs on PostgreSQL only: its integer and text limits are the strict ones."""
    from tests.conftest import base_settings

    return base_settings(database_url=pg_database_url)


@dataclass
class Actor:
    role: Role
    user: User

    async def headers(self) -> dict[str, str]:
        """A fresh token for an active user with the role: fuzzing may have revoked, demoted or deactivated it."""
        await User.filter(id=self.user.id).update(role=self.role, is_active=True, **_second_factor(self.role))
        _, secret = await service.do_create_access_token(self.user, TokenCreate(name="fuzz"), None)
        return {"authorization": f"Bearer {secret}"}


def _second_factor(role: Role) -> dict:
    if role not in (Role.DOCTOR, Role.ADMIN):
        return {}
    return {"totp_secret": crypto.seal(pyotp.random_base32(), "users.totp_secret"),
            "totp_enrolled_at": datetime(2026, 1, 1, tzinfo=UTC)}


async def _actors() -> list[Actor]:
    patient = await make_patient(credits=100)
    doctor = await make_doctor()
    await DoctorProfile.filter(user_id=doctor.id).update(status=ApplicationStatus.APPROVED)
    carer = await User.create(email="carer-fuzz@example.test", full_name="Carer Fuzz", role=Role.CARER)
    admin = await User.create(email="admin-fuzz@example.test", full_name="Admin Fuzz", role=Role.ADMIN)
    return [Actor(Role.PATIENT, patient), Actor(Role.DOCTOR, doctor), Actor(Role.CARER, carer),
            Actor(Role.ADMIN, admin)]


def _fuzz(operation, mode, checks, base_url: str, headers: dict[str, str], http: requests.Session) -> list[str]:
    """Run one operation's cases; the failures as readable reports (empty when all pass)."""
    failures: list[str] = []

    @SETTINGS
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        response = case.call(base_url=base_url, session=http, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except (AssertionError, FailureGroup) as exc:  # a FailureGroup lists every check that failed
            if len(failures) < 3:
                failures.append(f"{operation.label} [{mode.value}]: {exc}")

    if SEED is not None:
        run = hypothesis.seed(int(SEED))(run)
    try:
        run()
    except hypothesis.errors.Unsatisfiable:  # nothing to make invalid (no parameters, no body)
        assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    return failures


async def test_the_api_holds_its_contract_under_fuzzing(live_server):
    async with httpx.AsyncClient() as client:
        document = (await client.get(f"{live_server.url}/api/v1/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    actors = await _actors()
    failures: list[str] = []
    with requests.Session() as http:
        for actor in actors:
            for operation in operations:
                if operation.path == "/api/v1/openapi.json":
                    continue
                headers = await actor.headers()
                for mode, checks in MODES.items():
                    # The server answers in this loop, so the blocking client runs in a thread.
                    found = await asyncio.to_thread(_fuzz, operation, mode, checks, live_server.url, headers, http)
                    failures += [f"as {actor.role.value}: {f}" for f in found]
    assert not failures, f"{len(failures)} contract failure(s):\n\n" + "\n\n".join(failures[:40])
