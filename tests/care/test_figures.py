"""Care figures an agency can trust: what each task expects follows its target history and the
package's own days, and the API, the package page, the carer's Progress page and the PDF show the
same figures. Every expected figure here is worked out by hand in the comments; on SQLite and
PostgreSQL."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
from pypdf import PdfReader

from caretrack.accounts.models import User
from caretrack.care import service as care
from caretrack.care.models import CarePackage, CareTask, CareTaskTarget
from caretrack.care.schemas import CompletionIn, PackageIn, TaskChange, TaskIn
from caretrack.core.roles import Role
from tests.care.helpers import admin_user
from tests.conftest import TEST_BASE_URL
from tests.helpers import csrf_token, login, make_user


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@asynccontextmanager
async def signed_in(app, email: str, secret: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL,
                                 headers={"origin": TEST_BASE_URL}) as client:
        assert (await login(client, email, totp_secret=secret)).status_code == 303
        yield client


@dataclass
class Shown:
    """One surface's figures: per task title (done, expected, percent) and the total line."""

    rows: dict[str, tuple[int, int, int]]
    total: tuple[int, int, int]


def _numbers(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"(\d+) of (\d+)(?: expected completions)? \((\d+)%\)", text.strip())
    assert match, text
    return int(match[1]), int(match[2]), int(match[3])


async def from_api(client: httpx.AsyncClient, package_id: int, start: date, end: date) -> Shown:
    response = await client.get("/api/v1/care/progress", params={
        "start": start.isoformat(), "end": end.isoformat(), "package_id": package_id})
    assert response.status_code == 200, response.text
    body = response.json()
    titles = {t.id: t.title for t in await CareTask.filter(package_id=package_id)}
    return Shown({titles[r["task_id"]]: (r["done"], r["expected"], r["percent"]) for r in body["rows"]},
                 (body["done"], body["expected"], body["percent"]))


def from_chart(html: str) -> Shown:
    """The bar chart's rows ("Title (Carer): 2 of 4 (50%)") and the page's total line."""
    rows = {}
    for label, figures in re.findall(r"<g><title>([^<]+?): (\d+ of \d+ \(\d+%\))</title>", html):
        rows[re.sub(r" \([^)]*\)$", "", label)] = _numbers(figures)
    total = re.search(r'<p id="progress-total"><strong>Overall:</strong> ([^<]+)</p>', html)
    assert total, "no total line on the page"
    return Shown(rows, _numbers(total[1]))


async def from_page(client: httpx.AsyncClient, package_id: int, start: date | None = None,
                    end: date | None = None) -> tuple[Shown, str]:
    params = {"start": start.isoformat(), "end": end.isoformat()} if start and end else {}
    response = await client.get(f"/admin/care/packages/{package_id}", params=params)
    assert response.status_code == 200, response.text[:500]
    return from_chart(response.text), response.text


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


async def from_pdf(client: httpx.AsyncClient, url: str, titles: list[str]) -> Shown:
    response = await client.get(url)
    assert response.headers["content-type"] == "application/pdf", response.text[:300]
    lines = pdf_text(response.content).splitlines()
    rows = {}
    for title in titles:
        line = next((line for line in lines if line.startswith(title + " ")), None)
        if line is not None:  # Task, Carer, Target, Expected, Done, Not done, Compliance
            expected, done, _, percent = line.split()[-4:]
            rows[title] = (int(done), int(expected), int(percent.rstrip("%")))
    total = next(line for line in lines if line.startswith("Overall compliance: "))
    return Shown(rows, _numbers(total.removeprefix("Overall compliance: ")))


def from_carer_table(html: str) -> dict[str, tuple[int, int, int]]:
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)%</td></tr>", html)
    return {re.sub(r" \([^)]*\)$", "", label): (int(d), int(e), int(p)) for label, d, e, p in rows}


async def everywhere_shown(admin_client: httpx.AsyncClient, package_id: int, start: date, end: date) -> Shown:
    """The figures from the API, the package page and the PDF for one period: all the same."""
    api = await from_api(admin_client, package_id, start, end)
    page, _ = await from_page(admin_client, package_id, start, end)
    pdf = await from_pdf(admin_client, f"/admin/care/packages/{package_id}/compliance.pdf?start={start}&end={end}",
                         list(api.rows))
    assert page == api and pdf == api, (api, page, pdf)
    return api


async def package(admin: User, starts_on: str, *, ends_on: str | None = None, visit_times: str = "",
                  client_name: str = "Mrs Iris Client") -> CarePackage:
    return await care.do_create_package(admin, PackageIn.model_validate({
        "client_name": client_name, "starts_on": starts_on, "ends_on": ends_on, "visit_times": visit_times,
        "time_zone": "Europe/London"}), None)


async def task(admin: User, carer: User, package_id: int, title: str, target: int, period: str,
               at: datetime) -> CareTask:
    await care.do_assign_carer(admin, package_id, carer.id, None)  # a task goes only to a carer on the package
    return await care.do_create_task(admin, package_id, TaskIn.model_validate({
        "carer_id": carer.id, "title": title, "target": target, "period": period}), None, at=at)


async def log(carer: User, task_id: int, *instants: datetime, status: str = "done") -> None:
    for i, when in enumerate(instants):
        extra = {"status": "not_done", "reason": "Client declined"} if status == "not_done" else {}
        await care.do_log_completion(carer, task_id, CompletionIn(
            idempotency_key=f"t{task_id}-{status}-{i}-{when:%m%d%H%M}", occurred_at=when, **extra),
            at=when + timedelta(minutes=1))


async def test_the_agencys_report_a_task_added_and_raised_today_is_2_of_4_everywhere(app):
    """The bug as the agency found it: package from 23 Nov; on 1 Dec the admin adds "Medication
    prompt, 3 a day", raises it to 4, the carer logs 2. The default period (24 Nov to 1 Dec) used to
    say 2 of 28: targets counted for days before the task existed, at today's target."""
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    moment = [utc(2026, 12, 1, 9, 0)]
    async with signed_in(app, admin.email, secret) as boss, signed_in(app, cara.email) as carer:
        app.state.clock = lambda: moment[0]
        headers = {"x-csrf-token": await csrf_token(boss)}
        made = await boss.post("/api/v1/care/packages", headers=headers, json={
            "client_name": "Mrs Iris Client", "starts_on": "2026-11-23", "time_zone": "Europe/London"})
        package_id = made.json()["id"]
        assert (await boss.post(f"/api/v1/care/packages/{package_id}/carers", headers=headers,
                                json={"carer_id": cara.id})).status_code == 204
        moment[0] = utc(2026, 12, 1, 10, 0)
        created = await boss.post(f"/api/v1/care/packages/{package_id}/tasks", headers=headers, json={
            "carer_id": cara.id, "title": "Medication prompt", "target": 3, "period": "day"})
        task_id = created.json()["id"]
        moment[0] = utc(2026, 12, 1, 10, 5)
        assert (await boss.patch(f"/api/v1/care/tasks/{task_id}", headers=headers,
                                 json={"target": 4})).json()["target"] == 4
        carer_headers = {"x-csrf-token": await csrf_token(carer, "/carer")}
        for i, minute in enumerate((11, 12)):
            moment[0] = utc(2026, 12, 1, 11, minute)
            logged = await carer.post(f"/api/v1/care/tasks/{task_id}/completions", headers=carer_headers,
                                      json={"idempotency_key": f"meds-dec-1-{i}"})
            assert logged.status_code == 201, logged.text
        moment[0] = utc(2026, 12, 1, 18, 0)

        # 1 Dec is the only day the task existed, at 4 (the day's last target): 2 of 4 (50%)
        page, html = await from_page(boss, package_id)  # the default period
        assert page == Shown({"Medication prompt": (2, 4, 50)}, (2, 4, 50))
        assert "Progress, 2026-11-25 to 2026-12-01" in html
        link = re.search(r'href="(/admin/care/packages/\d+/compliance\.pdf\?[^"]+)"', html)[1].replace("&amp;", "&")
        assert await from_pdf(boss, link, ["Medication prompt"]) == page
        pdf = await from_pdf(boss, f"/admin/care/packages/{package_id}/compliance.pdf", ["Medication prompt"])
        assert pdf == page  # its own default, 30 days, also holds only 1 Dec
        assert await from_api(boss, package_id, date(2026, 11, 25), date(2026, 12, 1)) == page
        mine = await carer.get("/carer/progress")
        assert from_carer_table(mine.text) == {"Medication prompt": (2, 4, 50)}
        assert from_chart(mine.text) == page
        assert "Overall compliance: 2 of 4 expected completions (50%)" in pdf_text((await boss.get(link)).content)


async def test_created_changed_ended_and_weekly_tasks_and_an_ended_package(app, client):
    """Mon 9 to Sun 15 Nov 2026 (one ISO week), packages in Europe/London (GMT then)."""
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    home = await package(admin, "2026-11-02")
    before = utc(2026, 11, 2, 8, 0)
    # created Thu 12 Nov: 12, 13, 14, 15 at 3 = 12 expected; done 2
    midweek = await task(admin, cara, home.id, "Created midweek", 3, "day", utc(2026, 11, 12, 9, 0))
    await log(cara, midweek.id, utc(2026, 11, 12, 10, 0), utc(2026, 11, 13, 10, 0))
    # 2 a day, raised to 5 at 15:00 on Wed 11 Nov (the whole day): 2 + 2 + 5 * 5 = 29; done 3
    raised = await task(admin, cara, home.id, "Target raised", 2, "day", before)
    await log(cara, raised.id, utc(2026, 11, 9, 8, 0), utc(2026, 11, 9, 9, 0), utc(2026, 11, 11, 8, 0))
    await care.do_update_task(admin, raised.id, TaskChange(target=5), None, at=utc(2026, 11, 11, 15, 0))
    # 2 a day, ended at noon on Thu 12 Nov (nothing expected that day): 9, 10, 11 = 6; done 2, one
    # of them that morning; one not done
    ended = await task(admin, cara, home.id, "Ended", 2, "day", before)
    await log(cara, ended.id, utc(2026, 11, 10, 8, 0), utc(2026, 11, 12, 8, 0))
    await log(cara, ended.id, utc(2026, 11, 11, 8, 0), status="not_done")
    await care.do_update_task(admin, ended.id, TaskChange(is_active=False), None, at=utc(2026, 11, 12, 12, 0))
    # 1 a week: the one ISO week = 1 expected; none done
    await task(admin, cara, home.id, "Weekly", 1, "week", before)
    # 1 a day, changed to 2 a week on Wed 11 Nov: Mon and Tue at 1, then the week at 2 = 4; none done
    await care.do_update_task(
        admin, (await task(admin, cara, home.id, "Became weekly", 1, "day", before)).id,
        TaskChange(period="week", target=2), None, at=utc(2026, 11, 11, 7, 0))
    # a package that ended on Thu 12 Nov: 9, 10, 11, 12 at 1 = 4; done 1
    short = await package(admin, "2026-11-02", ends_on="2026-11-12", client_name="Mr Short Stay")
    brief = await task(admin, cara, short.id, "Package ended", 1, "day", before)
    await log(cara, brief.id, utc(2026, 11, 10, 8, 0))

    app.state.clock = lambda: utc(2026, 11, 16, 9, 0)
    await login(client, admin.email, totp_secret=secret)
    start, end = date(2026, 11, 9), date(2026, 11, 15)
    home_figures = await everywhere_shown(client, home.id, start, end)
    assert home_figures == Shown({
        "Created midweek": (2, 12, 17), "Target raised": (3, 29, 10), "Ended": (2, 6, 33), "Weekly": (0, 1, 0),
        "Became weekly": (0, 4, 0)}, (7, 52, 13))
    assert await everywhere_shown(client, short.id, start, end) == Shown({"Package ended": (1, 4, 25)}, (1, 4, 25))
    pdf = pdf_text((await client.get(f"/admin/care/packages/{home.id}/compliance.pdf?start={start}&end={end}")).content)
    ended_line = next(line for line in pdf.splitlines() if line.startswith("Ended "))
    assert ended_line.split()[-4:] == ["6", "2", "1", "33%"]  # expected, done, not done, compliance
    # the week before: "Created midweek" did not exist, so it is not listed; "Ended" expected 2 a day
    week_before = await everywhere_shown(client, home.id, date(2026, 11, 2), date(2026, 11, 8))
    assert "Created midweek" not in week_before.rows and week_before.rows["Ended"] == (0, 14, 0)
    # a period from Wed 11 to Tue 17 Nov touches two ISO weeks: the weekly task expects 1 in each
    assert (await from_api(client, home.id, date(2026, 11, 11), date(2026, 11, 17))).rows["Weekly"] == (0, 2, 0)

    async with signed_in(app, cara.email) as carer:  # the carer's page spans both packages
        mine = from_carer_table((await carer.get(f"/carer/progress?start={start}&end={end}")).text)
    assert mine == {**home_figures.rows, "Package ended": (1, 4, 25)}


async def _dst_week(app, client, first: date, instants: list[datetime]) -> tuple[Shown, str]:
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    home = await package(admin, "2026-01-01")
    meds = await task(admin, cara, home.id, "Medication prompt", 3, "day", utc(2026, 1, 1, 9, 0))
    await log(cara, meds.id, *instants)
    last = first + timedelta(days=6)
    app.state.clock = lambda: datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
    await login(client, admin.email, totp_secret=secret)
    shown = await everywhere_shown(client, home.id, first, last)
    _, html = await from_page(client, home.id, first, last)
    return shown, html


def per_day(html: str) -> dict[str, int]:
    return {day: int(n) for day, n in re.findall(r"<g><title>(\d\d [A-Z][a-z]{2}): (\d+)</title>", html)}


async def test_a_week_when_london_clocks_go_back_counts_london_days(app, client):
    """Mon 19 to Sun 25 Oct 2026: BST until 01:00 UTC on the 25th, then GMT (a 25-hour day)."""
    shown, html = await _dst_week(app, client, date(2026, 10, 19), [
        utc(2026, 10, 18, 22, 59),  # 23:59 BST on Sun 18: before the period
        utc(2026, 10, 18, 23, 0),   # 00:00 BST on Mon 19
        utc(2026, 10, 24, 23, 30),  # 00:30 BST on Sun 25
        utc(2026, 10, 25, 0, 30),   # 01:30 BST, the first time
        utc(2026, 10, 25, 1, 30),   # 01:30 GMT, the second time
        utc(2026, 10, 25, 23, 59),  # 23:59 GMT on Sun 25
        utc(2026, 10, 26, 0, 0),    # Mon 26: after it
    ])
    assert shown == Shown({"Medication prompt": (5, 21, 24)}, (5, 21, 24))  # 3 a day for 7 days
    assert per_day(html) == {"19 Oct": 1, "20 Oct": 0, "21 Oct": 0, "22 Oct": 0, "23 Oct": 0, "24 Oct": 0,
                             "25 Oct": 4}


async def test_a_week_when_london_clocks_go_forward_counts_london_days(app, client):
    """Mon 23 to Sun 29 Mar 2026: GMT until 01:00 UTC on the 29th, then BST (a 23-hour day)."""
    shown, html = await _dst_week(app, client, date(2026, 3, 23), [
        utc(2026, 3, 22, 23, 59),  # 23:59 GMT on Sun 22: before the period
        utc(2026, 3, 23, 0, 0),    # 00:00 GMT on Mon 23
        utc(2026, 3, 29, 0, 30),   # 00:30 GMT on Sun 29
        utc(2026, 3, 29, 1, 30),   # 02:30 BST
        utc(2026, 3, 29, 22, 59),  # 23:59 BST on Sun 29
        utc(2026, 3, 29, 23, 0),   # 00:00 BST on Mon 30: after it
    ])
    assert shown == Shown({"Medication prompt": (4, 21, 19)}, (4, 21, 19))
    assert per_day(html) == {"23 Mar": 1, "24 Mar": 0, "25 Mar": 0, "26 Mar": 0, "27 Mar": 0, "28 Mar": 0,
                             "29 Mar": 3}


async def test_history_rows_are_written_with_each_change_of_target_period_or_end(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org")
    home = await package(admin, "2026-11-02")
    # the history keeps the package's date: 23:30 UTC on 30 June is 00:30 BST on 1 July; a change
    # that leaves the target as it was writes nothing
    meds = await task(admin, cara, home.id, "Medication prompt", 3, "day", utc(2026, 6, 30, 23, 30))
    await care.do_update_task(admin, meds.id, TaskChange(title="Meds prompt"), None, at=utc(2026, 7, 2, 9, 0))
    await care.do_update_task(admin, meds.id, TaskChange(target=3), None, at=utc(2026, 7, 2, 9, 0))
    await care.do_update_task(admin, meds.id, TaskChange(target=4), None, at=utc(2026, 7, 3, 9, 0))
    await care.do_update_task(admin, meds.id, TaskChange(is_active=False), None, at=utc(2026, 7, 4, 9, 0))
    rows = await CareTaskTarget.filter(task_id=meds.id).order_by("id").values_list(
        "effective_on", "target", "period", "active")
    assert [tuple(r) for r in rows] == [(date(2026, 7, 1), 3, "day", True), (date(2026, 7, 3), 4, "day", True),
                                        (date(2026, 7, 4), 4, "day", False)]


async def test_a_page_counts_with_one_query_whatever_the_tasks_and_days(app, client, caplog):
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    home = await package(admin, "2025-01-01")
    for i, title in enumerate(("Medication prompt", "Fluid chart", "Shopping")):
        made = await task(admin, cara, home.id, title, 2, "day" if i < 2 else "week", utc(2025, 1, 1, 9, 0))
        await log(cara, made.id, *(utc(2025, 3, day, 9, i) for day in range(1, 29)))
    app.state.clock = lambda: utc(2025, 12, 31, 12, 0)
    await login(client, admin.email, totp_secret=secret)
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        year, _ = await from_page(client, home.id, date(2025, 1, 1), date(2025, 12, 31))
    reads = [r.getMessage() for r in caplog.records if "task_completions" in r.getMessage()]
    counting = [m for m in reads if "GROUP BY" in m]
    assert len(counting) == 1, counting
    # the page's other reads of completions are bounded (its timeline's newest notes), never the year's rows
    assert all(" LIMIT " in m or "WHERE 1=0" in m or '"id" IN' in m for m in reads if m not in counting), reads
    # 2 a day for 365 days; 2 a week for 53 ISO weeks (2025-W01 starts on 30 Dec 2024)
    assert year.rows == {"Medication prompt": (28, 730, 4), "Fluid chart": (28, 730, 4), "Shopping": (28, 106, 26)}


async def test_nothing_in_the_period_says_so(app, client):
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    home = await package(admin, "2026-11-02")
    await task(admin, cara, home.id, "Medication prompt", 3, "day", utc(2026, 11, 20, 9, 0))
    app.state.clock = lambda: utc(2026, 11, 21, 9, 0)
    await login(client, admin.email, totp_secret=secret)
    html = (await client.get(f"/admin/care/packages/{home.id}?start=2026-11-02&end=2026-11-08")).text
    assert html.count("No data for this period.") == 2  # the bars and the days
    assert '<svg class="chart"' not in html


async def test_tasks_in_two_zones_each_count_their_own_days(database):
    """One count over packages in London and New York: 03:00 UTC on 10 Nov is 03:00 on the 10th in
    London and 22:00 on the 9th in New York."""
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    london = await package(admin, "2026-11-02")
    new_york = await care.do_create_package(admin, PackageIn.model_validate({
        "client_name": "Mr Far Away", "starts_on": "2026-11-02", "time_zone": "America/New_York"}), None)
    here = await task(admin, cara, london.id, "Medication prompt", 1, "day", utc(2026, 11, 2, 9, 0))
    there = await task(admin, cara, new_york.id, "Fluid chart", 1, "day", utc(2026, 11, 2, 15, 0))
    for each in (here, there):
        await log(cara, each.id, utc(2026, 11, 10, 3, 0))
    tenth = date(2026, 11, 10)
    assert await care.done_counts([here.id, there.id], tenth, tenth) == {here.id: 1}
    assert await care.daily_done([here.id, there.id], date(2026, 11, 9), tenth) == [(date(2026, 11, 9), 1),
                                                                                   (tenth, 1)]
    mine = await care.figures(cara, start=tenth, end=tenth)
    assert {r.task.title: r.figures for r in mine.rows} == {"Medication prompt": "1 of 1 (100%)",
                                                           "Fluid chart": "0 of 1 (0%)"}
