"""The care and assessment pages and API through the app: declared in OpenAPI, role-checked,
bad input answered with a 4xx that names the problem, PDFs served."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from pypdf import PdfReader

from caretrack.assessments import service as assessments
from caretrack.care.models import TaskCompletion
from caretrack.core.roles import Role
from tests.care.helpers import admin_user, package_with_task, template
from tests.helpers import csrf_token, login, make_user

CARE_PATHS = ["/api/v1/care/today", "/api/v1/care/tasks/{task_id}/completions",
              "/api/v1/care/completions/{completion_id}/correction", "/api/v1/care/packages",
              "/api/v1/care/packages/{package_id}/tasks", "/api/v1/care/tasks/{task_id}",
              "/api/v1/assessments/templates", "/api/v1/assessments/attempts/{attempt_id}/answers",
              "/api/v1/assessments/attempts/{attempt_id}/marks", "/api/v1/assessments/matrix"]


async def test_the_care_api_is_in_the_openapi_document_with_roles(client):
    document = (await client.get("/api/v1/openapi.json")).json()
    for path in CARE_PATHS:
        assert path in document["paths"], path
    log = document["paths"]["/api/v1/care/tasks/{task_id}/completions"]["post"]
    assert "Allowed: carer." in log["description"]
    assert log["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CompletionIn"}
    assert "idempotency_key" in document["components"]["schemas"]["CompletionIn"]["required"]
    assert "Allowed: admin." in document["paths"]["/api/v1/care/packages"]["post"]["description"]


async def test_admin_pages_render_and_the_api_names_bad_input(app, client):
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    package, task = await package_with_task(admin, cara)
    t, _ = await template(admin)
    await login(client, admin.email, totp_secret=secret)
    for path in ("/admin/care", f"/admin/care/packages/{package.id}", "/admin/assessments",
                 f"/admin/assessments/{t.id}", "/admin/training", f"/admin/care/progress?carer_id={cara.id}"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "<script>" not in response.text  # CSP: no inline scripts
    page = (await client.get(f"/admin/care/packages/{package.id}")).text
    assert "Mrs Iris Client" in page and '<svg class="chart"' in page
    headers = {"x-csrf-token": await csrf_token(client)}
    bad = await client.post(f"/api/v1/care/packages/{package.id}/tasks", headers=headers,
                            json={"carer_id": cara.id, "title": "Shopping", "target": 1, "period": "fortnight"})
    assert bad.status_code == 422 and "period" in bad.json()["error"]["message"]
    window = await client.post(f"/api/v1/care/packages/{package.id}/tasks", headers=headers,
                               json={"carer_id": cara.id, "title": "Shopping", "target": 1, "period": "week",
                                     "window_start": "25:00"})
    assert window.status_code == 422 and "25:00" in window.json()["error"]["message"]
    created = await client.post(f"/api/v1/care/packages/{package.id}/tasks", headers=headers,
                                json={"carer_id": cara.id, "title": "Shopping", "target": 1, "period": "week"})
    assert created.status_code == 201 and created.json()["period"] == "week"
    changed = await client.patch(f"/api/v1/care/tasks/{task.id}", headers=headers, json={"target": 5})
    assert changed.json()["target"] == 5
    missing = await client.patch("/api/v1/care/tasks/99999", headers=headers, json={"target": 5})
    assert missing.status_code == 404
    pdf = await client.get(f"/admin/care/packages/{package.id}/compliance.pdf?start=2026-01-01&end=2025-01-01")
    assert pdf.status_code == 422 and "before it starts" in pdf.text
    pdf = await client.get(f"/admin/training/{cara.id}/record.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert "Cara Carer" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()


async def test_a_carer_takes_an_assessment_over_the_api_and_cannot_mark_it(app, client):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org")
    t, (q1, q2, text, practical) = await template(admin)
    attempt = await assessments.do_assign(admin, t.id, cara.id)
    await login(client, "cara@example.org")
    headers = {"x-csrf-token": await csrf_token(client)}
    mine = (await client.get("/api/v1/assessments/mine")).json()["attempts"]
    assert [a["id"] for a in mine] == [attempt.id]
    saved = await client.post(f"/api/v1/assessments/attempts/{attempt.id}/answers", headers=headers,
                              json={"answers": {str(q1.id): 7}})
    assert saved.status_code == 422 and "between 0 and 2" in saved.json()["error"]["message"]
    answers = {str(q1.id): 1, str(q2.id): [0, 1], str(text.id): "MAR", str(practical.id): "ok"}
    done = await client.post(f"/api/v1/assessments/attempts/{attempt.id}/answers", headers=headers,
                             json={"answers": answers, "submit": True})
    assert done.json()["status"] == "submitted"
    marks = await client.post(f"/api/v1/assessments/attempts/{attempt.id}/marks", headers=headers,
                              json={"marks": {}})
    assert marks.status_code == 403


async def test_a_time_entered_just_after_midnight_is_last_nights_visit(app, client):
    """The log form takes a time of day: 23:50 entered at 00:10 happened 20 minutes ago, not in
    23 hours (which the service refuses as the future)."""
    app.state.clock = lambda: datetime(2026, 10, 25, 0, 10, tzinfo=UTC)
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    _, task = await package_with_task(admin, cara)
    await login(client, "cara@example.org")
    token = await csrf_token(client, "/carer")
    for key, entered, expected in (("late-visit-0001", "23:50", datetime(2026, 10, 24, 23, 50, tzinfo=UTC)),
                                   ("early-visit-001", "00:05", datetime(2026, 10, 25, 0, 5, tzinfo=UTC))):
        response = await client.post(f"/carer/tasks/{task.id}/log", data={"key": key, "time": entered,
                                                                         "csrf_token": token})
        assert response.status_code == 303, response.text[:500]
        assert (await TaskCompletion.get(idempotency_key=key)).occurred_at == expected
