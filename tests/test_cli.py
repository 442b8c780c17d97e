"""The `caretrack` command as an operator runs it: real processes, real services."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from caretrack.core.settings import Settings
from tests.conftest import free_port


async def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "caretrack", *args,
        env={**os.environ, "CARETRACK_ENVIRONMENT": "test", **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("command", [[], ["serve"], ["media"], ["worker"], ["migrate"], ["demo"], ["createadmin"],
                                     ["audit", "verify"]])
async def test_every_command_has_help(command):
    code, out, _ = await run_cli(*command, "--help")
    assert code == 0
    assert "usage: caretrack" in out


async def test_a_bad_database_url_is_one_clear_line():
    code, _, err = await run_cli("serve", env={"CARETRACK_DATABASE_URL": "mysql://user:pw@db/care"})
    assert code == 1
    assert err.strip().count("\n") == 0
    assert "CARETRACK_DATABASE_URL" in err and "Traceback" not in err and "pw@" not in err


async def test_an_unreachable_database_is_one_clear_line():
    code, _, err = await run_cli("migrate", env={"CARETRACK_DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere"})
    assert code == 1
    assert "cannot reach the database at 127.0.0.1:1/nowhere" in err
    assert "Traceback" not in err


async def test_several_workers_need_redis(tmp_path):
    code, _, err = await run_cli("serve", "--workers", "2", env={"CARETRACK_DATABASE_URL": f"sqlite://{tmp_path}/x.sqlite3"})
    assert code == 1
    assert "CARETRACK_REDIS_URL" in err


async def test_several_workers_need_media_workers(tmp_path):
    code, _, err = await run_cli("serve", "--workers", "2", env={
        "CARETRACK_DATABASE_URL": f"sqlite://{tmp_path}/x.sqlite3", "CARETRACK_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert code == 1
    assert "CARETRACK_MEDIA_MODE=workers" in err and "caretrack media" in err


async def test_media_workers_need_the_workers_mode_and_redis(tmp_path):
    env = {"CARETRACK_DATABASE_URL": f"sqlite://{tmp_path}/x.sqlite3"}
    code, _, err = await run_cli("media", env=env)
    assert code == 1 and "CARETRACK_MEDIA_MODE=workers" in err
    code, _, err = await run_cli("media", env={**env, "CARETRACK_MEDIA_MODE": "workers"})
    assert code == 1 and "CARETRACK_MEDIA_MODE=workers needs CARETRACK_REDIS_URL" in err
    code, _, err = await run_cli("media", "--advertise", "http://x", env={
        **env, "CARETRACK_MEDIA_MODE": "workers", "CARETRACK_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert code == 1 and "--advertise must be a ws:// or wss:// URL" in err
    assert "Traceback" not in err


async def test_serve_refuses_an_unmigrated_database(tmp_path):
    code, _, err = await run_cli("serve", env={"CARETRACK_DATABASE_URL": f"sqlite://{tmp_path}/x.sqlite3"})
    assert code == 1
    assert "caretrack migrate" in err


@pytest.mark.parametrize("concurrency", ["0", "101"])
async def test_a_job_worker_concurrency_out_of_range_is_one_clear_line(concurrency, tmp_path):
    code, out, err = await run_cli("worker", "--concurrency", concurrency, env={
        "CARETRACK_DATABASE_URL": f"sqlite://{tmp_path}/x.sqlite3", "CARETRACK_JOBS_MODE": "workers"})
    assert (code, out) == (1, "")
    assert err == f"caretrack: error: --concurrency must be between 1 and 100, got {concurrency}\n"


# Whatever CARETRACK_JOBS_MODE says: the note about it comes only once the worker can start.
@pytest.mark.parametrize("jobs_mode", ["workers", "inprocess"])
async def test_a_job_worker_without_its_database_is_one_clear_line(jobs_mode, tmp_path):
    code, out, err = await run_cli("worker", env={
        "CARETRACK_DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere", "CARETRACK_JOBS_MODE": jobs_mode})
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith("caretrack: error: cannot reach the database at 127.0.0.1:1/nowhere")
    code, out, err = await run_cli("worker", env={
        "CARETRACK_DATABASE_URL": f"sqlite://{tmp_path}/x.sqlite3", "CARETRACK_JOBS_MODE": jobs_mode})
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith("caretrack: error: the database is ")
    assert err.rstrip().endswith("apply them with `caretrack migrate`") and "0008_jobs" in err


async def test_a_job_worker_without_redis_is_one_clear_line_and_one_with_it_stops_on_sigterm(tmp_path, redis_url):
    env = {**os.environ, "CARETRACK_ENVIRONMENT": "test", "CARETRACK_DATABASE_URL": f"sqlite://{tmp_path}/x.sqlite3",
           "CARETRACK_JOBS_MODE": "workers", "CARETRACK_REDIS_URL": "redis://127.0.0.1:1/0"}
    assert (await run_cli("migrate", env=env))[0] == 0
    code, out, err = await run_cli("worker", env=env)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith("caretrack: error: cannot reach Redis at CARETRACK_REDIS_URL")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "caretrack", "worker", "--id", "cli-1", env={**env, "CARETRACK_REDIS_URL": redis_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        banner = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert banner.startswith("CareTrack job worker cli-1 running") and "job kinds" in banner
    finally:
        process.terminate()
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()[-2000:]
    assert out.decode() == "CareTrack job worker cli-1 stopped\n" and "Traceback" not in err.decode()


async def test_migrate_then_check(tmp_path):
    env = {"CARETRACK_DATABASE_URL": f"sqlite://{tmp_path}/x.sqlite3"}
    assert (await run_cli("migrate", "--check", env=env))[0] == 1
    code, out, _ = await run_cli("migrate", env=env)
    assert code == 0 and "applied 0001_initial" in out
    code, out, _ = await run_cli("migrate", "--check", env=env)
    assert code == 0 and "current" in out


async def test_serve_two_workers_and_a_media_worker_on_postgres_and_redis_reports_ready(pg_database_url, redis_url):
    port = free_port()
    env = {**os.environ, "CARETRACK_DATABASE_URL": pg_database_url, "CARETRACK_REDIS_URL": redis_url,
           "CARETRACK_LOG_FORMAT": "json", "CARETRACK_MEDIA_MODE": "workers"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "caretrack", "serve", "--workers", "2", "--port", str(port),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    media = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "caretrack", "media", "--port", str(free_port()), "--id", "media-1",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        body = None
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/readyz")
                    body = response.json()
                    if response.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        assert body is not None, "the server never answered"
        assert body["status"] == "ready"
        assert body["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok", "media": "1 worker(s)"}
    finally:
        process.terminate()
        media.terminate()
        _, err = await asyncio.wait_for(process.communicate(), 30)
        media_out, media_err = await asyncio.wait_for(media.communicate(), 30)
    assert process.returncode == 0, err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    assert media.returncode == 0 and "media worker media-1 serving" in media_out.decode(), media_err.decode()[-2000:]
    assert '"media worker left the directory"' in media_err.decode()
    lines = [line for line in err.decode().splitlines() if line.startswith("{")]
    assert any('"request_id"' in line and '"route": "/readyz"' in line for line in lines), err.decode()[-2000:]


def worker_pids(pid: int) -> list[int]:
    """The hypercorn worker processes under `caretrack serve` (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    commands = {int(child): Path(f"/proc/{child}/cmdline").read_bytes() for child in children}
    return [child for child, command in commands.items()
            if b"multiprocessing" in command and b"resource_tracker" not in command]


async def test_a_killed_worker_stops_the_server_with_a_non_zero_status_and_one_line(pg_database_url, redis_url):
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "caretrack", "serve", "--workers", "2", "--port", str(port),
        env={**os.environ, "CARETRACK_DATABASE_URL": pg_database_url, "CARETRACK_REDIS_URL": redis_url,
             "CARETRACK_MEDIA_MODE": "workers", "CARETRACK_LOG_FORMAT": "json"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                pids = worker_pids(process.pid)
                try:
                    if len(pids) == 2 and (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        assert len(pids) == 2, pids
        os.kill(pids[0], signal.SIGKILL)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = err.decode()
    assert process.returncode == 1, text[-2000:]
    errors = [line for line in text.splitlines() if line.startswith("caretrack: error:")]
    assert len(errors) == 1, text[-2000:]
    assert f"(pid {pids[0]}) was killed by SIGKILL" in errors[0] and "other workers were stopped" in errors[0]
    assert "Traceback" not in text


@pytest.mark.parametrize("command", ["serve", "media"])
async def test_a_port_in_use_is_one_clear_line(command, tmp_path, redis_url):
    env = {"CARETRACK_DATABASE_URL": f"sqlite://{tmp_path}/x.sqlite3"}
    if command == "media":
        env.update(CARETRACK_MEDIA_MODE="workers", CARETRACK_REDIS_URL=redis_url)
    assert (await run_cli("migrate", env=env))[0] == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = await run_cli(command, "--port", str(port), env=env)
    assert code == 1
    assert err.strip() == f"caretrack: error: cannot listen on 127.0.0.1:{port}: Address already in use"


async def test_serve_on_another_port_accepts_sign_in_from_its_own_pages(tmp_path):
    """Without CARETRACK_BASE_URL the public URL follows --port: the login form's Origin is ours."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name != "CARETRACK_BASE_URL"}
    env.update(CARETRACK_ENVIRONMENT="test", CARETRACK_DATABASE_URL=f"sqlite://{tmp_path}/x.sqlite3",
               CARETRACK_ADMIN_PASSWORD="a long enough password 42")
    assert (await run_cli("migrate", env=env))[0] == 0
    code, out, err = await run_cli("createadmin", "--email", "ops@example.org", env=env)
    assert code == 0, err
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "caretrack", "serve", "--port", str(port),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        banner = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert banner.startswith(f"CareTrack serving on {base} (listening on 127.0.0.1:{port};"), banner
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(300):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            form = await client.get("/login")
            assert form.status_code == 200
            token = re.search(r'name="csrf_token" value="([^"]*)"', form.text).group(1)
            fields = {"email": "ops@example.org", "password": "a long enough password 42", "csrf_token": token}
            # The default's origin is someone else's once the server listens elsewhere.
            # (On a connection of its own: refused before its body is read, it is not kept alive.)
            async with httpx.AsyncClient(base_url=base, cookies=client.cookies) as other:
                foreign = await other.post("/login", data=fields, headers={"origin": "http://127.0.0.1:8000"})
            assert foreign.status_code == 403
            signed_in = await client.post("/login", data=fields, headers={"origin": base})
        assert signed_in.status_code == 303, signed_in.text[:500]
        assert signed_in.headers["location"] == "/mfa/setup" and "set-cookie" in signed_in.headers
    finally:
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()[-2000:]


def test_an_explicit_base_url_is_kept_and_a_missing_one_follows_the_bind_address(monkeypatch):
    from caretrack.core.settings import local_base_url
    from caretrack.site import cli

    monkeypatch.setenv("CARETRACK_BASE_URL", "https://care.example.org")
    proxied = Settings.from_env()
    assert cli._served_settings(proxied, "0.0.0.0", 8790).base_url == "https://care.example.org"
    assert os.environ["CARETRACK_BASE_URL"] == "https://care.example.org"
    monkeypatch.setenv("CARETRACK_BASE_URL", "")  # unset, as far as settings go
    served = cli._served_settings(Settings.from_env(), "0.0.0.0", 8790)
    assert served.base_url == "http://127.0.0.1:8790" and served.origins == {"http://127.0.0.1:8790"}
    # Web workers build their settings from the environment.
    assert Settings.from_env().base_url == "http://127.0.0.1:8790"
    assert local_base_url("::", 8000) == "http://127.0.0.1:8000"
    assert local_base_url("::1", 8000) == "http://[::1]:8000"
    assert local_base_url("care.local", 80) == "http://care.local:80"
