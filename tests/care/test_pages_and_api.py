"""The care and assessment pages and API through the app: declared in OpenAPI, role-checked,
bad input answered with a 4xx that names the problem, PDFs served."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from pypdf import PdfReader

from caretrack.assessments import service as assessments
from caretrack.assessments.schemas import AnswersIn
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


async def test_the_pages_say_expired_on_overdue_since_and_how_multiple_choice_scores(app, client):
    passed_at = datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    later = passed_at + timedelta(days=95)  # 2026-07-02: lapsed on 2026-06-27, renewal assigned late
    app.state.clock = lambda: later
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    t, (q1, q2) = await template(admin, manual=False, validity_days=90)
    await login(client, admin.email, totp_secret=secret)
    token = await csrf_token(client, f"/admin/assessments/{t.id}")
    view = await assessments.template_view(t.id)
    added = await client.post(f"/admin/assessments/{t.id}/questions", data={
        "csrf_token": token, "section_id": str(view.sections[0][0].id), "kind": "multiple", "points": "3",
        "prompt": "Which must you record?", "options": "*Dose\n*Time\n*Refusals\nWeather", "scoring": "partial"})
    assert added.status_code == 303, added.text[:500]
    builder = (await client.get(f"/admin/assessments/{t.id}")).text
    assert builder.count('data-scoring="partial">partial credit</span>') == 1
    assert builder.count('data-scoring="all_or_nothing">all or nothing</span>') == 1
    q3 = (await assessments.template_view(t.id)).questions[-1]

    first = await assessments.do_assign(admin, t.id, cara.id, at=passed_at)
    await assessments.do_save_answers(cara, first.id, AnswersIn(answers={
        str(q1.id): 1, str(q2.id): [0, 1], str(q3.id): [0, 1]}, submit=True), at=passed_at)  # 2 + 2 + 2 of 7
    assert await assessments.check_renewals(passed_at) == 0
    assert await assessments.check_renewals(later) == 1
    expiry = (passed_at + timedelta(days=90)).date()

    matrix = (await client.get("/admin/training")).text
    assert f"86%, expired on {expiry}" in matrix and "until" not in matrix

    await login(client, "cara@example.org")
    dashboard = (await client.get("/carer")).text
    assert f'<span class="hint">expired on {expiry}</span>' in dashboard
    assert f'<span class="badge bad" data-due>overdue since {expiry}</span>' in dashboard
    assert "until" not in dashboard
    mine = {a["reason"]: a for a in (await client.get("/api/v1/assessments/mine")).json()["attempts"]}
    assert (mine["renewal"]["due_status"], mine["renewal"]["due_on"]) == ("overdue", expiry.isoformat())
    assert mine["assigned"]["due_status"] is None
    result = (await client.get(f"/carer/assessments/{first.id}")).text
    assert "You scored <strong>86%</strong>" in result
    for number, score in ((1, "2 of 2"), (2, "2 of 2"), (3, "2 of 3")):
        assert f"Question {number}: {score} point(s)" in result, (number, score)
    renewal = (await client.get(f"/carer/assessments/{mine['renewal']['id']}")).text
    assert f'id="attempt-due">overdue since {expiry}</span>' in renewal
    assert "all or nothing: the 2 point(s) need every right option and no wrong one" in renewal
    assert "partial credit: each right option earns its share of the 3 point(s)" in renewal
    assert "3. Which must you record?" in renewal
