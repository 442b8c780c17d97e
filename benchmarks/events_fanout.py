"""Live-update fan-out: N sockets on /ws/events, events committed at a fixed rate,
delivery latency from commit to receipt, and the web processes' CPU and memory.

    .venv/bin/python benchmarks/events_fanout.py --sockets 5000 --processes 2 --rate 100
    .venv/bin/python benchmarks/events_fanout.py --suite        # the standard scenarios

Needs PostgreSQL (CARETRACK_BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres)
and Redis (CARETRACK_BENCH_REDIS_URL, default redis://127.0.0.1:6379/14, flushed). Each
scenario creates a fresh database, N users (role carer) each with one session, and starts
`caretrack serve` (one or two processes sharing Redis). Client sockets run in separate
processes, spread round-robin over the web processes; each answers pings and records every
event. This process is the producer: it commits events through `atomic()` + `tx.emit` and
runs a relay (the "worker process" of the design), recording each commit's wall-clock time.

Events: `--rate` per second to one random user each, plus every `--broadcast-every`
seconds one event to the role `carer` (every socket). Latency = receipt - commit (same
machine, same clock). Correctness is checked too: every socket must receive exactly the
events addressed to its user, in sequence order, none missing, none doubled.
CPU is the web processes' (whole process trees) CPU time over the measured window, as a
share of one core; memory is their total RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

POSTGRES_URL = os.environ.get("CARETRACK_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CARETRACK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SECRET_KEY = "bench-secret-key-0123456789abcdef"
# Browsers offer permessage-deflate and hypercorn always accepts it; --no-compression shows its cost.
COMPRESSION = True
CLK = os.sysconf("SC_CLK_TCK")


# --- setup --------------------------------------------------------------------------------


async def create_database(sockets: int) -> tuple[str, list[tuple[int, str]]]:
    """A fresh migrated database with `sockets` carers, one session each: [(user_id, cookie)]."""
    import asyncpg

    from caretrack.accounts.sessions import digest
    from caretrack.core import db
    from caretrack.core.settings import Settings

    name = f"caretrack_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    await db.migrate(Settings(database_url=url, secret_key=SECRET_KEY))
    await db.stop()
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    now = datetime.now(UTC)
    await conn.copy_records_to_table(
        "users", columns=["id", "email", "full_name", "role", "is_active", "time_zone", "created_at", "updated_at"],
        records=[(i, f"carer{i}@bench.test", f"Carer {i}", "carer", True, "UTC", now, now)
                 for i in range(1, sockets + 1)])
    await conn.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), $1)", sockets)
    cookies = [(i, secrets.token_urlsafe(32)) for i in range(1, sockets + 1)]
    await conn.copy_records_to_table(
        "sessions", columns=["id", "user_id", "csrf_token", "mfa_verified", "created_at", "last_seen_at", "expires_at"],
        records=[(digest(s), i, secrets.token_urlsafe(16), True, now, now, now + timedelta(hours=12))
                 for i, s in cookies])
    await conn.close()
    return url, cookies


async def drop_database(url: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1))
    await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await admin.close()


def env_for(database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARETRACK_")}
    env.update({
        "CARETRACK_ENVIRONMENT": "test", "CARETRACK_DATABASE_URL": database_url, "CARETRACK_REDIS_URL": REDIS_URL,
        "CARETRACK_SECRET_KEY": SECRET_KEY, "CARETRACK_BASE_URL": f"http://127.0.0.1:{port}",
        "CARETRACK_LOG_LEVEL": "WARNING", "CARETRACK_SESSION_IDLE_MINUTES": "600",
    })
    return env


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start_web(database_url: str) -> tuple[str, subprocess.Popen]:
    import httpx

    port = free_port()
    process = subprocess.Popen([str(ROOT / ".venv/bin/python"), "-m", "caretrack", "serve", "--port", str(port)],
                               env=env_for(database_url, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=str(ROOT))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as probe:
        for _ in range(600):
            try:
                if (await probe.get(url + "/readyz")).status_code == 200:
                    return url, process
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("caretrack serve did not start")


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / CLK


def pids_named(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


# --- client processes -----------------------------------------------------------------------


def client_worker(targets: list[tuple[str, int, str]], ready: mp.Queue, stop: mp.Event, results: mp.Queue,
                  progress) -> None:
    """Hold sockets for (ws_url, user_id, cookie); report [(user_id, [(marker, seq, t)])]."""
    asyncio.run(_client_main(targets, ready, stop, results, progress))


async def _client_main(targets, ready, stop, results, progress) -> None:
    import websockets

    records: list[tuple[int, list]] = []
    failures = 0
    gate = asyncio.Semaphore(100)

    async def hold(url: str, user_id: int, cookie: str) -> None:
        nonlocal failures
        got: list = []
        records.append((user_id, got))
        origin = url.replace("ws://", "http://").split("/ws/")[0]
        try:
            async with gate:
                ws = await websockets.connect(url, origin=origin,
                                              additional_headers={"Cookie": f"caretrack_session={cookie}"},
                                              open_timeout=60, ping_interval=None, max_size=2**22,
                                              compression="deflate" if COMPRESSION else None)
                await ws.recv()
                await ws.send('{"type":"resume","after":null}')
            connected.append(1)
            async for raw in ws:
                now = time.time()
                message = json.loads(raw)
                if message["type"] == "event":
                    got.append((message["event"]["data"].get("m"), message["seq"], now))
                    progress.value += 1
                elif message["type"] == "ping":
                    await ws.send('{"type":"pong"}')
        except asyncio.CancelledError:
            await ws.close()
            raise
        except Exception:
            failures += 1

    connected: list[int] = []
    tasks = [asyncio.create_task(hold(*t)) for t in targets]
    deadline = time.monotonic() + 120
    while len(connected) + failures < len(targets) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    ready.put((len(connected), failures))
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    results.put(records)


# --- the run --------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def run(sockets: int, processes: int, rate: float, duration: float, broadcast_every: float,
              client_processes: int) -> dict:
    import redis.asyncio as aioredis

    from caretrack.core import crypto, db
    from caretrack.core.settings import Settings
    from caretrack.core.transaction import atomic
    from caretrack.realtime.bus import Bus, BusConfig

    r = aioredis.Redis.from_url(REDIS_URL)
    await r.flushdb()
    started_setup = time.monotonic()
    database_url, cookies = await create_database(sockets)
    webs = [await start_web(database_url) for _ in range(processes)]
    result: dict = {"sockets": sockets, "processes": processes, "rate": rate, "duration": duration,
                    "broadcast_every": broadcast_every, "permessage_deflate": COMPRESSION}
    stop = mp.Event()
    ready: mp.Queue = mp.Queue()
    results: mp.Queue = mp.Queue()
    workers = []
    progress = [mp.Value("q", 0, lock=False) for _ in range(client_processes)]
    try:
        targets = [(webs[i % processes][0].replace("http://", "ws://") + "/ws/events", uid, cookie)
                   for i, (uid, cookie) in enumerate(cookies)]
        for k in range(client_processes):
            worker = mp.get_context("fork").Process(target=client_worker,
                                                    args=(targets[k::client_processes], ready, stop, results,
                                                          progress[k]))
            worker.start()
            workers.append(worker)
        t_connect = time.monotonic()
        connected = failed = 0
        for _ in workers:
            c, f = ready.get(timeout=180)
            connected, failed = connected + c, failed + f
        result["connect_seconds"] = round(time.monotonic() - t_connect, 1)
        result["connected"], result["connect_failures"] = connected, failed
        trees = [process_tree(p.pid) for _, p in webs]
        result["rss_idle_connected_mib"] = round(sum(rss_mib(t) for t in trees), 1)

        settings = Settings(environment="test", database_url=database_url, redis_url=REDIS_URL, secret_key=SECRET_KEY)
        crypto.configure(settings.phi_keys)
        await db.start(settings)
        bus = Bus(settings, r, BusConfig())
        await bus.start()
        commits: dict[int, float] = {}
        addressed: dict[int, list[int] | None] = {}  # marker -> users (None = everyone)
        rng = random.Random(1)
        components = {
            "web": [p for t in trees for p in t],
            "clients": [p for w in workers for p in process_tree(w.pid)],
            "postgres": pids_named("postgres"),
            "redis": pids_named("redis-server"),
            "producer": [os.getpid()],
        }
        component_before = {k: cpu_seconds(v) for k, v in components.items()}
        cpu_before = [cpu_seconds(t) for t in trees]
        window_start = time.monotonic()
        marker = 0
        next_broadcast = window_start + broadcast_every if broadcast_every else float("inf")
        interval = 1.0 / rate
        next_at = window_start
        lag = 0.0
        while time.monotonic() - window_start < duration:
            now = time.monotonic()
            if now < next_at:
                await asyncio.sleep(next_at - now)
            lag = max(lag, time.monotonic() - next_at)
            next_at += interval
            marker += 1
            if time.monotonic() >= next_broadcast:
                next_broadcast += broadcast_every
                async with atomic() as tx:
                    await tx.emit("bench.broadcast", actor_id=None, roles=["carer"], data={"m": marker})
                addressed[marker] = None
            else:
                user = rng.randint(1, sockets)
                async with atomic() as tx:
                    await tx.emit("bench.single", actor_id=None, users=[user], data={"m": marker})
                addressed[marker] = [user]
            commits[marker] = time.time()
        produced_seconds = time.monotonic() - window_start
        broadcasts = sum(1 for v in addressed.values() if v is None)
        expected_total = (marker - broadcasts) + broadcasts * connected
        last, still = -1, time.monotonic()
        while time.monotonic() - still < 5.0:  # the tail: until all arrived, or 5 s without progress
            total = sum(p.value for p in progress)
            if total >= expected_total:
                break
            if total != last:
                last, still = total, time.monotonic()
            await asyncio.sleep(0.1)
        result["drain_seconds"] = round(time.monotonic() - window_start - produced_seconds, 1)
        cpu_after = [cpu_seconds(t) for t in trees]
        window = time.monotonic() - window_start
        result["cpu_core_share_by_component"] = {
            k: round((cpu_seconds(v) - component_before[k]) / window, 2) for k, v in components.items()}
        result["rss_end_mib"] = round(sum(rss_mib(t) for t in trees), 1)
        result["cpu_core_share"] = [round((a - b) / window, 2) for a, b in zip(cpu_after, cpu_before, strict=True)]
        result["events"] = marker
        result["achieved_rate"] = round(marker / produced_seconds, 1)
        result["producer_max_lag_ms"] = round(lag * 1000, 1)
        stop.set()
        records = []
        for _ in workers:
            records += results.get(timeout=120)
        await bus.stop()
        await db.stop()

        expected_by_user: dict[int, int] = {}
        for users in addressed.values():
            for u in users or ():
                expected_by_user[u] = expected_by_user.get(u, 0) + 1
        latencies, single, broadcast, missing, doubled, disordered, deliveries = [], [], [], 0, 0, 0, 0
        anomalies = []
        for user_id, got in records:
            expected = {m for m, users in addressed.items() if users is None or user_id in users}
            markers = [m for m, _, _ in got]
            seqs = [s for _, s, _ in got]
            doubled += len(markers) - len(set(markers))
            missing += len(expected - set(markers))
            disordered += sum(1 for a, b in pairwise(seqs) if b != a + 1)
            deliveries += len(got)
            if (len(markers) != len(set(markers)) or expected != set(markers)) and len(anomalies) < 3:
                anomalies.append({"user": user_id, "missing": sorted(expected - set(markers))[:10],
                                  "unexpected": sorted(set(markers) - expected)[:10],
                                  "received": [(m, s) for m, s, _ in got][:40]})
            for m, _, t in got:
                if m in commits:
                    ms = (t - commits[m]) * 1000
                    latencies.append(ms)
                    (broadcast if addressed[m] is None else single).append(ms)
        if anomalies:
            result["anomalies"] = anomalies
        result.update(
            deliveries=deliveries, missing=missing, doubled=doubled, out_of_order=disordered,
            deliveries_per_second=round(deliveries / produced_seconds),
            latency_ms={"p50": round(pct(latencies, 50), 1), "p95": round(pct(latencies, 95), 1),
                        "p99": round(pct(latencies, 99), 1), "max": round(max(latencies, default=float("nan")), 1)},
            latency_single_ms={"p50": round(pct(single, 50), 1), "p95": round(pct(single, 95), 1),
                               "p99": round(pct(single, 99), 1)},
            latency_broadcast_ms={"p50": round(pct(broadcast, 50), 1), "p95": round(pct(broadcast, 95), 1),
                                  "p99": round(pct(broadcast, 99), 1)},
        )
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
        for _, process in webs:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        await drop_database(database_url)
        await r.flushdb()
        await r.aclose()
    result["total_seconds"] = round(time.monotonic() - started_setup, 1)
    return result


SUITE = [  # (sockets, processes, rate, broadcast_every)
    (1000, 1, 100, 2.0),
    (5000, 1, 100, 2.0),
    (5000, 2, 100, 2.0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--processes", type=int, choices=(1, 2), default=1, help="web processes sharing Redis")
    parser.add_argument("--rate", type=float, default=100.0, help="single-recipient events per second")
    parser.add_argument("--broadcast-every", type=float, default=2.0,
                        help="seconds between events to every socket (0: none)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of production (bounded: max 120)")
    parser.add_argument("--client-processes", type=int, default=0, help="load-generator processes (0: auto)")
    parser.add_argument("--suite", action="store_true", help="run the standard scenarios")
    parser.add_argument("--no-compression", action="store_true",
                        help="clients do not offer permessage-deflate (browsers do)")
    args = parser.parse_args()
    global COMPRESSION
    COMPRESSION = not args.no_compression
    duration = min(args.duration, 120.0)
    scenarios = SUITE if args.suite else [(args.sockets, args.processes, args.rate, args.broadcast_every)]
    print(f"machine: {os.cpu_count()} cores; {Path('/proc/cpuinfo').read_text().count('processor')} logical",
          flush=True)
    for sockets, processes, rate, broadcast in scenarios:
        clients = args.client_processes or (1 if sockets <= 1000 else 2)
        result = asyncio.run(run(sockets, processes, rate, duration, broadcast, clients))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
