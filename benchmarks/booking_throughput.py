"""Booking throughput on PostgreSQL: booking requests per second and latency percentiles at
50 and 200 concurrent clients, through the app (HTTP API in process: auth, validation,
service, ORM) and, in the same run, the same transaction as raw SQL over asyncpg.

    .venv/bin/python benchmarks/booking_throughput.py                # 50 and 200 clients, 8 s each
    .venv/bin/python benchmarks/booking_throughput.py --clients 50 --seconds 5

Needs PostgreSQL (CARETRACK_BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).
Each run creates a fresh database (dropped at the end), 40 approved doctors open all week
with 30-minute consultations, and one patient per client with ample credits. Each client
books distinct free slots one after another (a shared queue spreads them over the
doctors), so the numbers measure the successful path: checks, the exclusion constraint,
the ledger debit, audit row and outbox events, all in one transaction.

Both paths get a connection pool of the same size (--pool, default 20). The raw-SQL path
runs the same statements the service does, written by hand (no ORM, no HTTP), so the gap
between the two is the cost of the framework layers.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get("CARETRACK_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DOCTORS = 40
FEE = 5


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


async def admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_URL.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def setup(clients: int):
    """Doctors, patients with credits and access tokens. Returns (doctor ids, patient (id, token)s)."""
    from caretrack.accounts import service as accounts
    from caretrack.accounts.models import User
    from caretrack.accounts.schemas import TokenCreate
    from caretrack.booking.models import Availability, DoctorProfile
    from caretrack.core.roles import Role
    from caretrack.core.transaction import atomic
    from caretrack.payments import ledger

    await User.bulk_create([User(email=f"d{i}@bench.test", full_name=f"Dr {i}", role=Role.DOCTOR)
                            for i in range(DOCTORS)])
    doctors = await User.filter(role=Role.DOCTOR).order_by("id")
    await DoctorProfile.bulk_create([DoctorProfile(
        user_id=d.id, status="approved", licence_number=f"L{d.id}", licence_body="Board",
        licence_expires_on=date.today() + timedelta(days=800), specialty="General", languages="english",
        biography="Benchmark doctor.", fee_credits=FEE, submitted_at=datetime.now(UTC)) for d in doctors])
    await Availability.bulk_create([Availability(
        doctor_id=d.id, time_zone="UTC", weekly=[{"weekday": w, "start": "00:00", "end": "24:00"} for w in range(7)],
        consultation_minutes=30, min_notice_minutes=0, horizon_days=365) for d in doctors])
    await User.bulk_create([User(email=f"p{i}@bench.test", full_name=f"Patient {i}", role=Role.PATIENT)
                            for i in range(clients)])
    patients = await User.filter(role=Role.PATIENT).order_by("id")
    tokens = []
    async with atomic() as tx:
        for p in patients:
            await ledger.transfer(tx.conn, ledger.GRANTS, ledger.credits(p.id), 10_000_000, "grant", "bench")
    for p in patients:
        _, secret = await accounts.do_create_access_token(p, TokenCreate(name="bench"), None)
        tokens.append((p.id, secret))
    return [d.id for d in doctors], tokens


def slot_queue(doctors: list[int], start: datetime, offset_days: int):
    """An endless supply of distinct (doctor, start) pairs, round-robin over the doctors."""
    base = start + timedelta(days=offset_days)
    i = 0
    while True:
        yield doctors[i % len(doctors)], base + timedelta(minutes=30 * (i // len(doctors)))
        i += 1


async def run_clients(clients: int, seconds: float, one_request) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await one_request(n)
                latencies.append(time.perf_counter() - t0)
            except Exception as exc:  # counted, not hidden
                key = type(exc).__name__ + ": " + str(exc)[:80]
                errors[key] = errors.get(key, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    return {"clients": clients, "requests": len(latencies), "per_second": len(latencies) / elapsed,
            "p50_ms": pct(latencies, 50) * 1000, "p95_ms": pct(latencies, 95) * 1000,
            "p99_ms": pct(latencies, 99) * 1000, "errors": errors}


async def app_path(settings, tokens, queue, clients: int, seconds: float) -> dict:
    import httpx
    from asgi_lifespan import LifespanManager

    from caretrack.site.app import create_app

    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as http:
            async def one(n: int) -> None:
                doctor_id, start = next(queue)
                response = await http.post("/api/v1/bookings", json={"doctor_id": doctor_id,
                                                                     "starts_at": start.isoformat()},
                                           headers={"authorization": f"Bearer {tokens[n][1]}",
                                                    "idempotency-key": secrets.token_hex(8)})
                if response.status_code != 201:
                    raise RuntimeError(f"HTTP {response.status_code} {response.text[:100]}")

            return await run_clients(clients, seconds, one)


RAW_BOOK = """
INSERT INTO appointments (doctor_id, patient_id, status, active, starts_at, ends_at, blocked_from, blocked_until,
  time_zone, fee_credits, cancel_cutoff_hours, late_cancel_refund_percent, idempotency_key, booked_at,
  refunded_credits, reschedule_count, created_at)
VALUES ($1, $2, 'booked', true, $3, $4, $3, $4, 'UTC', $5, 24, 0, $6, now(), 0, 0, now()) RETURNING id
"""


async def raw_path(url: str, pool_size: int, tokens, queue, clients: int, seconds: float) -> dict:
    """The booking transaction by hand: the same reads (profile, user, availability,
    exceptions, overlap), the insert under the exclusion constraint, the conditional debit,
    two ledger rows, the audit chain step, one outbox event for two recipients."""
    import asyncpg

    pool = await asyncpg.create_pool(url.replace("postgres://", "postgresql://", 1), min_size=pool_size,
                                     max_size=pool_size)

    async def one(n: int) -> None:
        doctor_id, start = next(queue)
        patient_id = tokens[n][0]
        end = start + timedelta(minutes=30)
        async with pool.acquire() as conn, conn.transaction():
            profile = await conn.fetchrow("SELECT status, fee_credits, licence_expires_on FROM doctor_profiles "
                                          "WHERE user_id = $1", doctor_id)
            await conn.fetchrow("SELECT id FROM users WHERE id = $1 AND role = 'doctor' AND is_active", doctor_id)
            await conn.fetchrow("SELECT * FROM doctor_availability WHERE doctor_id = $1", doctor_id)
            await conn.fetch("SELECT * FROM doctor_availability_exceptions WHERE doctor_id = $1", doctor_id)
            await conn.fetchrow("SELECT id FROM appointments WHERE patient_id = $1 AND doctor_id = $2 AND "
                                "status = 'held' AND active AND starts_at = $3 LIMIT 1", patient_id, doctor_id, start)
            await conn.execute("UPDATE appointments SET status = 'expired', active = false WHERE doctor_id = $1 AND "
                               "status = 'held' AND hold_expires_at <= now() AND active AND blocked_from < $3 AND "
                               "blocked_until > $2", doctor_id, start, end)
            clash = await conn.fetchval("SELECT 1 FROM appointments WHERE doctor_id = $1 AND active AND "
                                        "blocked_from < $3 AND blocked_until > $2 LIMIT 1", doctor_id, start, end)
            if clash:
                raise RuntimeError("slot taken")
            appointment_id = await conn.fetchval(RAW_BOOK, doctor_id, patient_id, start, end, profile["fee_credits"],
                                                 secrets.token_hex(8))
            fee = profile["fee_credits"]
            escrow, wallet = f"escrow:{doctor_id}", f"credits:{patient_id}"
            await conn.execute("INSERT INTO credit_accounts (key, user_id, balance, may_go_negative) "
                               "VALUES ($1, $2, 0, false) ON CONFLICT (key) DO NOTHING", escrow, doctor_id)
            for key in sorted((escrow, wallet)):
                if key == wallet:
                    moved = await conn.execute("UPDATE credit_accounts SET balance = balance - $1 WHERE key = $2 "
                                               "AND (balance >= $1 OR may_go_negative)", fee, wallet)
                    if moved.endswith(" 0"):
                        raise RuntimeError("insufficient credits")
                else:
                    await conn.execute("UPDATE credit_accounts SET balance = balance + $1 WHERE key = $2", fee, escrow)
            transfer = secrets.token_hex(8)
            await conn.executemany(
                "INSERT INTO ledger_entries (transfer_id, account_id, amount, kind, memo, appointment_id, "
                "created_by_id, created_at) VALUES ($1, $2, $3, 'booking', 'Consultation', $4, $5, now())",
                [(transfer, wallet, -fee, appointment_id, patient_id),
                 (transfer, escrow, fee, appointment_id, patient_id)])
            head = await conn.fetchrow("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
            occurred = datetime.now(UTC)
            detail = json.dumps({"doctor_id": doctor_id, "fee": fee}, sort_keys=True, separators=(",", ":"))
            digest = hashlib.sha256(json.dumps([head["hash"], head["seq"], occurred.isoformat(), patient_id,
                                                "booking.created", "appointment", str(appointment_id), None, detail],
                                               separators=(",", ":")).encode()).hexdigest()
            await conn.execute("INSERT INTO audit_log (seq, occurred_at, actor_id, action, subject_type, subject_id, "
                               "detail, prev_hash, hash) VALUES ($1, $2, $3, 'booking.created', 'appointment', $4, "
                               "$5, $6, $7)", head["seq"], occurred, patient_id, str(appointment_id), detail,
                               head["hash"], digest)
            await conn.execute("UPDATE audit_head SET hash = $1 WHERE id = 1", digest)
            event_id = await conn.fetchval(
                "INSERT INTO events (type, kind, occurred_at, actor_id, subject_kind, subject_id, data) VALUES "
                "('booking.created', 'booking', now(), $1, 'appointment', $2, $3) RETURNING id",
                patient_id, str(appointment_id), json.dumps({"id": appointment_id}))
            rows = await conn.fetch(
                "INSERT INTO event_cursors (user_id, last_seq) SELECT u, 1 FROM unnest($1::int[]) AS u ORDER BY u "
                "ON CONFLICT (user_id) DO UPDATE SET last_seq = event_cursors.last_seq + 1 RETURNING user_id, last_seq",
                sorted({doctor_id, patient_id}))
            await conn.executemany("INSERT INTO event_deliveries (user_id, seq, event_id) VALUES ($1, $2, $3)",
                                   [(r["user_id"], r["last_seq"], event_id) for r in rows])

    try:
        return await run_clients(clients, seconds, one)
    finally:
        await pool.close()


async def main(args) -> None:
    from caretrack.core import crypto, db, logs
    from caretrack.core.settings import Settings

    logs.configure("console", "WARNING")  # per-request log lines would dominate the app path

    name = f"caretrack_bench_{secrets.token_hex(3)}"
    await admin(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    results = []
    try:
        base = Settings(environment="test", secret_key="bench-secret-key-0123456789", base_url="http://bench",
                        log_level="WARNING")
        settings = base.replace(database_url=f"{url}?minsize=1&maxsize={args.pool}")
        await db.migrate(settings)
        await db.stop()
        crypto.configure(settings.phi_keys)
        await db.start(settings)
        doctors, tokens = await setup(max(args.clients))
        await db.stop()
        start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        offset = 0
        for clients in args.clients:
            for path in ("app", "raw"):
                queue = slot_queue(doctors, start, offset)
                offset += 60  # fresh days for every run: each booking takes a free slot
                if path == "app":
                    result = await app_path(settings, tokens, queue, clients, args.seconds)
                else:
                    result = await raw_path(url, args.pool, tokens, queue, clients, args.seconds)
                result["path"] = path
                results.append(result)
                print(f"{path:>4} {clients:>4} clients: {result['per_second']:7.1f} bookings/s  "
                      f"p50 {result['p50_ms']:6.1f} ms  p95 {result['p95_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms"
                      f"  ({result['requests']} ok, errors: {result['errors'] or 'none'})", flush=True)
        # every booking is real: no doctor has overlapping active rows, the ledger balances
        await db.start(settings)
        from caretrack.payments.ledger import check_ledger

        check = await check_ledger()
        print(f"ledger check: {'ok' if check.ok else check}")
        await db.stop()
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--pool", type=int, default=20, help="database connections per path")
    parser.add_argument("--json", help="also write the results to this file")
    asyncio.run(main(parser.parse_args()))
