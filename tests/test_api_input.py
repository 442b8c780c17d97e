"""Hostile input never reaches a 500: ids and integers bounded to what the database holds,
text without NUL, bodies that are not UTF-8 or JSON, each refused with a 4xx that names
the problem (and, for a 422, each wrong field once). On SQLite and PostgreSQL."""

from __future__ import annotations

import pyotp
import pytest

from caretrack.accounts import service
from caretrack.accounts.models import User
from caretrack.accounts.schemas import TokenCreate
from caretrack.core.roles import Role
from tests.helpers import make_user

TOTP_SECRET = pyotp.random_base32()


async def bearer(role: Role) -> dict[str, str]:
    user = await make_user(role, f"{role.value}-input@example.org",
                           totp_secret=TOTP_SECRET if role in (Role.ADMIN, Role.DOCTOR) else None)
    _, secret = await service.do_create_access_token(user, TokenCreate(name="fuzz"), None)
    return {"authorization": f"Bearer {secret}"}


@pytest.fixture
async def patient(client) -> dict[str, str]:
    return await bearer(Role.PATIENT)


@pytest.fixture
async def admin(client) -> dict[str, str]:
    return await bearer(Role.ADMIN)


def fields_of(response) -> list[str]:
    return [f["field"] for f in response.json()["error"]["fields"]]


@pytest.mark.parametrize("path", [
    "/api/v1/appointments/2147483648",
    "/api/v1/appointments/99999999999999999999999999",
    "/api/v1/appointments/0",
    "/api/v1/appointments/007",
    "/api/v1/doctors/2147483648/slots",
    "/api/v1/users/2147483648/profile",
])
async def test_an_id_beyond_what_the_database_holds_is_404(client, patient, path):
    response = await client.get(path, headers=patient)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"


async def test_the_largest_id_the_database_holds_is_an_ordinary_404(client, patient):
    response = await client.get("/api/v1/appointments/2147483647", headers=patient)
    assert response.status_code == 404, response.text


async def test_pages_404_for_an_id_beyond_the_database(client, admin):
    for path in ("/admin/users/2147483648", "/appointments/2147483648", "/admin/emails/99999999999999999999"):
        response = await client.get(path, headers=admin)
        assert response.status_code == 404, (path, response.status_code)


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/events?after=76712467181896203169832108032", "after"),
    ("/api/v1/events?before=9223372036854775808", "before"),
    ("/api/v1/doctors?offset=789104700430162541412352", "offset"),
    ("/api/v1/doctors?offset=2147483648", "offset"),
    ("/api/v1/doctors?name=a%00b", "name"),
])
async def test_out_of_range_or_nul_query_parameters_are_422_naming_the_field(client, patient, path, field):
    response = await client.get(path, headers=patient)
    assert response.status_code == 422, response.text
    assert fields_of(response) == [field]
    assert f"'{field}'" in response.json()["error"]["message"]


async def test_admin_queries_are_bounded_too(client, admin):
    response = await client.get("/api/v1/admin/users?offset=2147483648&q=x%00", headers=admin)
    assert response.status_code == 422, response.text
    assert sorted(fields_of(response)) == ["offset", "q"]


async def test_a_body_that_is_not_utf8_is_400_saying_so(client, patient):
    response = await client.post("/api/v1/holds", content=b'{"doctor_id": 1, "starts_at": "\xc1"}',
                                 headers={**patient, "content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "not UTF-8" in response.json()["error"]["message"]
    assert "0xC1" in response.json()["error"]["message"]


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"doctor_id": ' + b"9" * 5000 + b"}",
                                  b"{not json"])
async def test_deep_huge_or_broken_json_is_400(client, patient, body):
    response = await client.post("/api/v1/holds", content=body, headers={**patient, "content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_json"


async def test_integer_body_fields_are_bounded_and_each_wrong_field_is_named_once(client, patient):
    response = await client.post("/api/v1/holds", json={"doctor_id": 2**31, "starts_at": "soon"}, headers=patient)
    assert response.status_code == 422, response.text
    fields = response.json()["error"]["fields"]
    assert [f["field"] for f in fields] == ["doctor_id", "starts_at"]
    assert "2147483647" in fields[0]["message"]


async def test_nul_in_a_nested_body_string_is_422_naming_its_location(client, admin):
    response = await client.post("/api/v1/care/packages", headers=admin, json={
        "client_name": "A\x00B", "starts_on": "2026-01-01", "visit_times": ["09:00", "1\x000"]})
    assert response.status_code == 422, response.text
    assert fields_of(response) == ["client_name", "visit_times.1"]
    assert "NUL" in response.json()["error"]["fields"][0]["message"]


async def test_every_broken_rule_of_a_command_is_named_at_its_field_with_its_sentence(client, admin):
    # The care commands' own rules (a blank name, an end before the start, a bad visit time)
    # are reported beside pydantic's and the NUL rule, each at its field, not one at a time.
    response = await client.post("/api/v1/care/packages", headers=admin, json={
        "client_name": "  ", "address": "A\x00", "starts_on": "2026-13-01", "visit_times": ["25:00"]})
    assert response.status_code == 422, response.text
    fields = {f["field"]: f["message"] for f in response.json()["error"]["fields"]}
    assert set(fields) == {"client_name", "address", "starts_on", "visit_times"}, fields
    assert "NUL" in fields["address"]
    assert "25:00" in fields["visit_times"] and "HH:MM" in fields["visit_times"]
    response = await client.post("/api/v1/care/packages", headers=admin, json={
        "client_name": "Edna", "starts_on": "2026-12-01", "ends_on": "2026-11-30"})
    assert response.status_code == 422, response.text
    assert "before it starts" in response.json()["error"]["message"]


async def test_a_query_parameter_given_twice_is_422_not_half_read(client, patient):
    response = await client.get("/api/v1/doctors?offset=1&offset=2&name=x", headers=patient)
    assert response.status_code == 422, response.text
    assert fields_of(response) == ["offset"]


async def test_a_page_form_with_nul_or_a_huge_number_is_422_not_500(client):
    """Every form is refused NUL before its page runs; ids are bounded where the page reads them."""
    from tests.helpers import csrf_token, login

    await make_user(Role.PATIENT, "form-input@example.org")
    await login(client, "form-input@example.org")
    token = await csrf_token(client)
    profile = await client.post("/account", data={"full_name": "A\x00B", "time_zone": "UTC", "csrf_token": token})
    assert profile.status_code == 422, profile.status_code
    assert "form field &#39;full_name&#39;: must not contain the NUL character" in profile.text
    assert (await User.get(email="form-input@example.org")).full_name != "A\x00B"
    hold = await client.post("/holds", data={"doctor_id": "99999999999999999999",
                                             "starts_at": "2030-01-01T10:00:00+00:00", "csrf_token": token})
    assert hold.status_code == 422, hold.status_code
    assert "doctor_id" in hold.text and ID_REFUSED in hold.text


ID_REFUSED = "must be an id (a whole number from 1 to 2147483647)"


async def test_page_form_ids_are_bounded_and_the_field_named_before_any_query(client):
    from tests.care.helpers import admin_user, package_with_task, template
    from tests.helpers import csrf_token, login

    admin, secret = await admin_user("ids-admin@example.org")
    carer = await make_user(Role.CARER, "ids-carer@example.org")
    package, _ = await package_with_task(admin, carer)
    assessment, _ = await template(admin)
    await login(client, admin.email, totp_secret=secret)
    token = await csrf_token(client)
    huge = "99999999999999999999"
    forms = [
        (f"/admin/assessments/{assessment.id}/questions", {"section_id": huge, "kind": "text", "prompt": "Why?"},
         "section_id"),
        (f"/admin/assessments/{assessment.id}/assign", {"carer_id": huge}, "carer_id"),
        (f"/admin/care/packages/{package.id}/carers", {"carer_id": str(2**31)}, "carer_id"),
        (f"/admin/care/packages/{package.id}/tasks", {"carer_id": huge, "title": "Shopping", "target": "1",
                                                      "period": "week"}, "carer_id"),
    ]
    for path, data, field in forms:
        response = await client.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 422, (path, response.status_code)
        assert f"{field}&#39; {ID_REFUSED}" in response.text, (path, response.text[-3000:])


def test_the_database_refusals_of_bad_input_are_recognised():
    import asyncpg
    from tortoise.exceptions import OperationalError

    from caretrack.core import db

    try:
        try:
            raise asyncpg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00')
        except asyncpg.PostgresError as exc:
            raise OperationalError(exc) from exc
    except OperationalError as wrapped:
        assert db.refused_input_reason(wrapped) == db.NUL_REFUSED
    out_of_range = asyncpg.DataError("invalid input for query argument $1: 2147483648 (value out of int32 range)")
    assert db.refused_input_reason(out_of_range) == db.NUMBER_REFUSED
    assert db.refused_input_reason(OverflowError("Python int too large to convert to SQLite INTEGER"))
    assert db.refused_input_reason(asyncpg.DataError("invalid input syntax for type uuid")) is None
    assert db.refused_input_reason(ValueError("a bug")) is None


@pytest.mark.parametrize("path", ["/admin/training?skill_id=99999999999", "/admin/training?skill_id=%C2%B2",
                                  "/admin/care/progress?carer_id=2147483648", "/admin/care/progress?carer_id=-1"])
async def test_page_query_ids_are_bounded(client, path):
    from tests.helpers import login

    await make_user(Role.ADMIN, "admin-pages@example.org", totp_secret=TOTP_SECRET)
    await login(client, "admin-pages@example.org", totp_secret=TOTP_SECRET)
    response = await client.get(path)
    assert response.status_code == 422, response.status_code
    assert "2147483647" in response.text


def _unbounded_integers(schema, components, where: str, seen=()) -> list[str]:
    if isinstance(schema, list):
        return [hit for item in schema for hit in _unbounded_integers(item, components, where, seen)]
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return [] if name in seen else _unbounded_integers(components[name], components, f"{where}.{name}",
                                                           (*seen, name))
    found = [where] if schema.get("type") == "integer" and not {"minimum", "maximum"} <= schema.keys() else []
    for key, value in schema.items():
        if key == "properties":
            found += [hit for name, prop in value.items()
                      for hit in _unbounded_integers(prop, components, f"{where}.{name}", seen)]
        elif isinstance(value, (dict, list)):
            found += _unbounded_integers(value, components, where, seen)
    return found


async def test_every_integer_the_api_accepts_is_bounded_in_the_openapi_document():
    """The class, not the instances: a new unbounded id or count fails here before it fails in PostgreSQL."""
    import httpx

    from caretrack.site.app import create_app
    from tests.conftest import TEST_BASE_URL, base_settings

    app = create_app(base_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL) as c:
        document = (await c.get("/api/v1/openapi.json")).json()
    components = document["components"]["schemas"]
    unbounded = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", ()):
                where = f"{method} {path} {parameter['name']}"
                unbounded += _unbounded_integers(parameter["schema"], components, where)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            unbounded += _unbounded_integers(body, components, f"{method} {path} body")
    assert not unbounded, (
        "bound these with caretrack.core.validation (Id, Count, Int32, Sequence): " + ", ".join(unbounded))


async def test_tokens_and_text_no_one_can_store_are_refused_not_500(client):
    """A CSRF token or signature holding non-ASCII (hmac.compare_digest refuses such str), and
    JSON text holding a lone surrogate (no UTF-8 encoding, so it cannot be stored or sealed)."""
    from caretrack.notifications.providers import signature_matches
    from tests.helpers import csrf_token, login

    await make_user(Role.PATIENT, "odd-tokens@example.org")
    await login(client, "odd-tokens@example.org")
    form = await client.post("/account", data={"full_name": "Pat", "time_zone": "UTC", "csrf_token": "é"})
    assert form.status_code == 403
    api = await client.patch("/api/v1/me/profile", json={"full_name": "Pat"},
                             headers={"x-csrf-token": "é".encode("latin-1")})
    assert api.status_code == 403
    assert not signature_matches("token", "https://example.test/api/v1/sms/status", [("A", "b")], "é")
    token = await csrf_token(client)
    lone = await client.patch("/api/v1/me/profile", content=b'{"full_name": "\\ud800"}',
                              headers={"x-csrf-token": token, "content-type": "application/json"})
    assert lone.status_code == 422 and "unpaired surrogate" in lone.text, lone.text
    assert (await User.get(email="odd-tokens@example.org")).full_name == "Test Person"
