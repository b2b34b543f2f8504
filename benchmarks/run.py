"""carbook benchmarks: contention, throughput, listing, start-up, bulk import.

    bash scripts/bench.sh            # everything, full size (a few minutes on 2 cores)
    bash scripts/bench.sh --tiny     # every benchmark at smoke size

Each benchmark compares against a baseline measured in the same run (absolute numbers
drift on a shared machine). Results go to benchmarks/results/latest.json and
latest.md (docs/benchmarks.md includes it; `--only NAME` replaces those rows). Nothing here is a test: speed is
measured, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks import fanout
from benchmarks.cpu import stack_cpu
from benchmarks.hot_car import bench_hot_car
from benchmarks.http import bench_http
from benchmarks.race import bench_http_race
from benchmarks.report import markdown, write
from carbook_sdk import AsyncCarbook, CarAlreadyBookedError
from carbook_stack.local_postgres import find_pg_bindir, free_port
from carbook_stack.manager import LocalStack
from carbook_stack.settings import StackSettings
from carbook_stack.testing import PASSWORD, make_cars, make_users
from carbook_stack.testing import stack_db as db

ROOT = Path(__file__).resolve().parents[1]
PNG = (ROOT / "supabase" / "images" / "sample-car.png").read_bytes()


@dataclass(frozen=True)
class Sizes:
    race_clients: int = 200
    race_runs: int = 10
    tp_cars: int = 2000
    tp_levels: tuple[int, ...] = (1, 8, 32, 64)
    tp_users: int = 64
    listing_cars: int = 100_000
    listing_requests: int = 200
    import_rows: int = 500
    startup_runs: int = 3
    hot_seconds: int = 5
    hot_free_cars: int = 30_000
    http_seconds: int = 3
    http_rounds: int = 9
    http_warmup: int = 2
    http_cars: int = 8_000
    fanout_watchers: int = 1000
    fanout_bookings: int = 20
    fanout_burst: int = 200
    fanout_procs: int = 2


TINY = Sizes(
    race_clients=5,
    race_runs=2,
    tp_cars=12,
    tp_levels=(1, 4),
    tp_users=4,
    listing_cars=300,
    listing_requests=5,
    import_rows=4,
    startup_runs=1,
    hot_seconds=1,
    hot_free_cars=50,
    http_seconds=1,
    http_rounds=1,
    http_warmup=1,
    http_cars=50,
    fanout_watchers=20,
    fanout_bookings=3,
    fanout_burst=10,
)

#: Every benchmark, in the order a run takes them (``--only`` picks some).
BENCHMARKS = ("race", "http_race", "throughput", "hot_car", "http", "fanout", "import", "startup", "listing")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[k], 2)


async def signed_in_clients(stack: LocalStack, users: list[tuple[str, str]]) -> list[AsyncCarbook]:
    s = stack.settings
    clients = [AsyncCarbook(s.api_url, s.anon_key, timeout=60) for _ in users]
    gate = asyncio.Semaphore(16)

    async def sign_in(c: AsyncCarbook, email: str) -> None:
        async with gate:
            await c.auth.sign_in(email, PASSWORD)

    await asyncio.gather(*(sign_in(c, e) for c, (_, e) in zip(clients, users, strict=True)))
    return clients


# 1. Race -------------------------------------------------------------------------------------
async def bench_race(stack: LocalStack, sizes: Sizes) -> dict[str, Any]:
    users = make_users(stack, sizes.race_clients, f"race-{uuid.uuid4().hex[:6]}")
    clients = await signed_in_clients(stack, users)
    runs = []
    double_bookings = 0
    try:
        for run in range(sizes.race_runs):
            car = make_cars(stack, 1, f"race-{uuid.uuid4().hex[:6]}-{run}")[0]
            start = asyncio.Event()

            async def attempt(
                c: AsyncCarbook, car: str = car, start: asyncio.Event = start
            ) -> tuple[str, float]:
                await start.wait()
                t = time.perf_counter()
                try:
                    await c.bookings.book(car)
                    outcome = "win"
                except CarAlreadyBookedError:
                    outcome = "lose"
                except Exception as exc:  # counted, never hidden
                    outcome = f"error: {type(exc).__name__}"
                return outcome, (time.perf_counter() - t) * 1000

            tasks = [asyncio.create_task(attempt(c)) for c in clients]
            await asyncio.sleep(0)
            start.set()
            results = await asyncio.gather(*tasks)
            wins = sum(1 for o, _ in results if o == "win")
            with db(stack) as conn:
                booked = conn.execute(
                    "select count(*) from public.audit_logs where action = 'car.booked' and record_id = %s",
                    (car,),
                ).fetchone()
            double_bookings += max(0, wins - 1) + max(0, (booked[0] if booked else 0) - 1)
            lat = [ms for _, ms in results]
            runs.append(
                {
                    "winners": wins,
                    "losers": sum(1 for o, _ in results if o == "lose"),
                    "errors": sum(1 for o, _ in results if o.startswith("error")),
                    "p50_ms": pct(lat, 50),
                    "p99_ms": pct(lat, 99),
                }
            )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return {
        "clients": sizes.race_clients,
        "runs": runs,
        "double_bookings": double_bookings,
        "errors": sum(r["errors"] for r in runs),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 1),
        "p99_ms": max(r["p99_ms"] for r in runs),
    }


# 2. Throughput -------------------------------------------------------------------------------
def attempts_for(cars: list[str], n_users: int) -> list[tuple[str, int]]:
    """Every car twice, by two different users."""
    return [(car, (2 * j + k) % n_users) for j, car in enumerate(cars) for k in (0, 1)]


async def run_attempts(attempts: list[tuple[str, int]], level: int, call: Any) -> float:
    gate = asyncio.Semaphore(level)

    async def one(car: str, user: int) -> None:
        async with gate:
            await call(car, user)

    t = time.perf_counter()
    await asyncio.gather(*(one(c, u) for c, u in attempts))
    return len(attempts) / (time.perf_counter() - t)


def pgbench(stack: LocalStack, cars: list[str], users: list[tuple[str, str]], level: int) -> float:
    """The database's own limit: book_car_atomic with the same role and claims PostgREST sets."""
    attempts = attempts_for(cars, len(users))
    with db(stack) as conn:
        conn.execute("create schema if not exists bench")
        conn.execute("drop table if exists bench.attempts; drop sequence if exists bench.seq")
        conn.execute("create table bench.attempts (n int primary key, car_id uuid, claims text)")
        conn.execute("create sequence bench.seq")
        with conn.cursor() as cur:
            cur.executemany(
                "insert into bench.attempts values (%s, %s, %s)",
                [
                    (i + 1, car, json.dumps({"sub": users[u][0], "role": "authenticated"}))
                    for i, (car, u) in enumerate(attempts)
                ],
            )
    script = Path(tempfile.mkdtemp(prefix="carbook-pgbench-")) / "book.sql"
    script.write_text(
        "SELECT car_id, claims FROM bench.attempts WHERE n = (SELECT nextval('bench.seq')) \\gset\n"
        "BEGIN;\n"
        "SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', :claims, true);\n"
        "SELECT public.book_car_atomic(:car_id);\n"
        "COMMIT;\n"
    )
    per_client = len(attempts) // level
    s = stack.settings
    out = subprocess.run(
        [
            str(find_pg_bindir() / "pgbench"),
            "-n",
            "-M",
            "prepared",
            "-f",
            str(script),
            "-c",
            str(level),
            "-j",
            str(min(level, 2)),
            "-t",
            str(per_client),
            "-h",
            s.host,
            "-p",
            str(s.db_port),
            "-U",
            "postgres",
            "postgres",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": "postgres"},
        timeout=600,
    )
    shutil.rmtree(script.parent, ignore_errors=True)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"pgbench failed: {out.stderr or out.stdout}")
    return float(m.group(1))


async def bench_throughput(stack: LocalStack, sizes: Sizes) -> dict[str, Any]:
    from supabase import AsyncClient, AsyncClientOptions

    s = stack.settings
    users = make_users(stack, sizes.tp_users, f"tp-{uuid.uuid4().hex[:6]}")
    sdk = await signed_in_clients(stack, users)
    tokens = [await c.auth.access_token() for c in sdk]
    plain = []
    for (_, email), _token in zip(users, tokens, strict=True):
        client = AsyncClient(s.api_url, s.anon_key, AsyncClientOptions(auto_refresh_token=False))
        await client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
        plain.append(client)
    raw = httpx.AsyncClient(
        base_url=f"{s.api_url}/rest/v1", limits=httpx.Limits(max_connections=100), timeout=60
    )

    async def via_sdk(car: str, user: int) -> None:
        with contextlib.suppress(CarAlreadyBookedError):
            await sdk[user].bookings.book(car)

    async def via_plain(car: str, user: int) -> None:
        await plain[user].rpc("book_car_atomic", {"car_id": car}).execute()

    async def via_http(car: str, user: int) -> None:
        r = await raw.post(
            "/rpc/book_car_atomic",
            json={"car_id": car},
            headers={"apikey": s.anon_key, "Authorization": f"Bearer {tokens[user]}"},
        )
        r.raise_for_status()

    levels = []
    try:
        for level in sizes.tp_levels:
            row: dict[str, Any] = {"concurrency": level}
            tag = uuid.uuid4().hex[:6]
            row["pgbench"] = round(
                pgbench(stack, make_cars(stack, sizes.tp_cars, f"tp-d-{tag}"), users, level), 1
            )
            for name, call in (("http", via_http), ("supabase_py", via_plain), ("sdk", via_sdk)):
                cars = make_cars(stack, sizes.tp_cars, f"tp-{name}-{tag}")
                row[name] = round(await run_attempts(attempts_for(cars, len(users)), level, call), 1)
            for name in ("http", "supabase_py", "sdk"):
                row[f"{name}_vs_pgbench"] = round(row[name] / row["pgbench"], 3)
            row["sdk_vs_supabase_py"] = round(row["sdk"] / row["supabase_py"], 3)
            levels.append(row)
    finally:
        await raw.aclose()
        await asyncio.gather(*(c.aclose() for c in sdk))
        with db(stack) as conn:
            conn.execute("drop schema if exists bench cascade")
    return {"cars": sizes.tp_cars, "users": sizes.tp_users, "unit": "bookings/s", "levels": levels}


# 3. Listing ------------------------------------------------------------------------------------
async def bench_listing(stack: LocalStack, sizes: Sizes) -> dict[str, Any]:
    s = stack.settings
    with db(stack) as conn:
        conn.execute(
            """insert into public.cars (make, model, year, image_path, is_published, booking_status,
                                        booked_by, booked_at, price_in_paise, created_at)
               select 'List', 'Car ' || g, 2000 + g %% 25, 'bench/car.png', g %% 10 <> 0,
                      case when g %% 7 = 0 then 'booked' else 'available' end,
                      null, case when g %% 7 = 0 then now() end, 100000 + g,
                      now() - make_interval(secs => g)
                 from generate_series(1, %s) g""",
            (sizes.listing_cars,),
        )
        conn.execute("analyze public.cars")
        conn.execute("set role anon")
        conn.execute("""select set_config('request.jwt.claims', '{"role": "anon"}', false)""")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                """explain select * from public.cars
                    where is_published and booking_status = 'available'
                    order by created_at desc, id limit 51"""
            )
        )
    async with AsyncCarbook(s.api_url, s.anon_key) as cb, httpx.AsyncClient(base_url=s.api_url) as raw:
        sdk_ms: list[float] = []
        cursor = None
        for _ in range(sizes.listing_requests):
            t = time.perf_counter()
            page = await cb.cars.list_available(limit=50, cursor=cursor)
            sdk_ms.append((time.perf_counter() - t) * 1000)
            cursor = page.next_cursor
        raw_ms: list[float] = []
        for _ in range(sizes.listing_requests):
            t = time.perf_counter()
            r = await raw.get(
                "/rest/v1/cars",
                params={
                    "select": "*",
                    "is_published": "eq.true",
                    "booking_status": "eq.available",
                    "order": "created_at.desc,id.asc",
                    "limit": "51",
                },
                headers={"apikey": s.anon_key},
            )
            r.raise_for_status()
            raw_ms.append((time.perf_counter() - t) * 1000)
    return {
        "cars": sizes.listing_cars,
        "page": 50,
        "sdk_p50_ms": pct(sdk_ms, 50),
        "sdk_p99_ms": pct(sdk_ms, 99),
        "http_p50_ms": pct(raw_ms, 50),
        "http_p99_ms": pct(raw_ms, 99),
        "index_used": "cars_available_listing_idx" in plan and "Seq Scan on cars" not in plan,
        "plan": plan,
    }


# 4. Start-up -----------------------------------------------------------------------------------
def carbook(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("carbook"))
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=300)


def bench_startup(sizes: Sizes) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="carbook-bench-start-"))
    os.chmod(base, 0o755)
    cold: list[float] = []  # the command's own figure (inside `LocalStack.start`)
    warm: list[float] = []
    cold_wall: list[float] = []  # the whole command, interpreter start-up included
    warm_wall: list[float] = []
    try:
        for i in range(sizes.startup_runs):
            state = base / f"s{i}"
            state.mkdir()
            # Free ports, written where `carbook stack start --state-dir` reads them.
            api_port = free_port()
            settings = StackSettings.from_config(
                state, api_port=api_port, db_port=free_port(avoid={api_port})
            )
            (state / "stack.json").write_text(settings.model_dump_json())
            for bucket, wall_bucket in ((cold, cold_wall), (warm, warm_wall)):
                began = time.perf_counter()
                out = carbook("stack", "start", "--state-dir", str(state), "--json")
                wall_bucket.append(time.perf_counter() - began)
                if out.returncode != 0:
                    raise RuntimeError(out.stderr)
                bucket.append(json.loads(out.stdout)["started_in"])
                carbook("stack", "stop", "--state-dir", str(state))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    # Both commands as an installed package runs them: from cached bytecode. pip compiles
    # a wheel's modules at install; an editable checkout (or PYTHONDONTWRITEBYTECODE=1, as
    # on this kind of machine) would compile carbook's own modules from source on every
    # run, which Typer, from site-packages, never does. A throwaway cache folder, filled by
    # a first untimed run of each, makes it the same for both.
    pycache = tempfile.mkdtemp(prefix="carbook-bench-pyc-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache

    def wall(cmd: list[str], n: int = 7) -> float:
        subprocess.run(cmd, capture_output=True, check=True, env=env)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, env=env)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    try:
        help_s = wall([str(Path(sys.executable).with_name("carbook")), "--help"])
        typer_s = wall([sys.executable, "-c", "import typer"])
    finally:
        shutil.rmtree(pycache, ignore_errors=True)
    return {
        "cold_s": round(statistics.median(cold), 2),
        "warm_s": round(statistics.median(warm), 2),
        "cold_wall_s": round(statistics.median(cold_wall), 2),
        "warm_wall_s": round(statistics.median(warm_wall), 2),
        "help_s": round(help_s, 3),
        "import_typer_s": round(typer_s, 3),
        "help_vs_typer": round(help_s / typer_s, 2),
    }


# 5. Bulk import ------------------------------------------------------------------------------------
def bench_import(stack: LocalStack, sizes: Sizes) -> dict[str, Any]:
    s = stack.settings
    work = Path(tempfile.mkdtemp(prefix="carbook-bench-import-"))
    env = {
        **os.environ,
        "SUPABASE_URL": s.api_url,
        "SUPABASE_ANON_KEY": s.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": s.service_role_key,
        "CARBOOK_CONFIG_DIR": str(work / "config"),
    }
    try:
        (work / "car.png").write_bytes(PNG)
        login = carbook(
            "auth", "login", "--email", "admin@carbook.local", "--password", "carbook-admin", env=env
        )
        if login.returncode != 0:
            raise RuntimeError(login.stderr)
        out: dict[str, Any] = {"rows": sizes.import_rows}
        for level in (1, 8):
            tag = uuid.uuid4().hex[:6]
            lines = ["ref,make,model,year,price,currency,image"]
            lines += [
                f"imp-{tag}-{i},Bench,Import {i},2024,1000.00,INR,car.png" for i in range(sizes.import_rows)
            ]
            csv_path = work / f"{tag}.csv"
            csv_path.write_text("\n".join(lines) + "\n")
            cpu_before, client_before = stack_cpu(stack), resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            run = carbook(
                "cars", "import", str(csv_path), "--images-dir", str(work), "--concurrency", str(level), "--json",
                env=env,
            )  # fmt: skip
            elapsed = time.perf_counter() - t
            cpu_after, client_after = stack_cpu(stack), resource.getrusage(resource.RUSAGE_CHILDREN)
            if run.returncode != 0:
                raise RuntimeError(run.stderr)
            imported = len(json.loads(run.stdout)["imported"])
            out[f"c{level}_rows_per_s"] = round(imported / elapsed, 1)
            out[f"c{level}_imported"] = imported
            # What limits it: CPU per row by part (the CLI's start-up is in "client"), and
            # how many cores the CLI and the stack kept busy together.
            used = {part: cpu_after[part] - cpu_before.get(part, 0.0) for part in cpu_after}
            used["client"] = (client_after.ru_utime - client_before.ru_utime) + (
                client_after.ru_stime - client_before.ru_stime
            )
            out[f"c{level}_cpu_ms_per_row"] = {
                k: round(v * 1000 / max(imported, 1), 1) for k, v in used.items()
            }
            out[f"c{level}_cores_busy"] = round(sum(used.values()) / elapsed, 2)
        out["c8_vs_c1"] = round(out["c8_rows_per_s"] / out["c1_rows_per_s"], 2)
        out["cores"] = os.cpu_count()
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


# Report --------------------------------------------------------------------------------------------
async def run_all(stack: LocalStack, sizes: Sizes, only: set[str] | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    steps: list[tuple[str, Any]] = [
        ("race", lambda: bench_race(stack, sizes)),
        ("http_race", lambda: bench_http_race(stack, sizes.race_clients, sizes.race_runs)),
        ("throughput", lambda: bench_throughput(stack, sizes)),
        ("hot_car", lambda: bench_hot_car(stack, sizes.hot_seconds, sizes.hot_free_cars)),
        (
            "http",
            lambda: bench_http(
                stack, sizes.http_seconds, sizes.http_cars, sizes.http_rounds, sizes.http_warmup
            ),
        ),
        (
            "fanout",
            lambda: fanout.bench_fanout(
                stack, sizes.fanout_watchers, sizes.fanout_bookings, sizes.fanout_burst, sizes.fanout_procs
            ),
        ),
        ("import", lambda: bench_import(stack, sizes)),
        ("startup", lambda: bench_startup(sizes)),
        ("listing", lambda: bench_listing(stack, sizes)),  # last: it fills the table
    ]
    for name, step in steps:
        if only and name not in only:
            continue
        began = time.perf_counter()
        value = step()
        results[name] = await value if asyncio.iscoroutine(value) else value
        print(f"  {name}: {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="every benchmark at smoke size")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="where results go")
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS,
        help="run just these (repeatable); their rows replace the same rows of the last report",
    )  # fmt: skip
    parser.add_argument(
        "--render", action="store_true", help="write latest.md again from latest.json, running nothing"
    )
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads((args.out / "latest.json").read_text())
        (args.out / "latest.md").write_text(markdown(report))
        return 0
    sizes = TINY if args.tiny else Sizes()
    if args.only and os.environ.get("CARBOOK_BENCH_TP_CARS"):
        sizes = Sizes(
            **{**asdict(sizes), "tp_cars": int(os.environ["CARBOOK_BENCH_TP_CARS"]), "tp_levels": (8, 32)}
        )
    base = Path(tempfile.mkdtemp(prefix="carbook-bench-"))
    os.chmod(base, 0o755)
    stack = LocalStack.ephemeral(base / "state")
    stack.settings.postgrest_pool = 20
    began = time.perf_counter()
    try:
        stack.start()
        results = asyncio.run(run_all(stack, sizes, set(args.only) if args.only else None))
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "command": "bash scripts/bench.sh" + (" --tiny" if args.tiny else ""),
        "sizes": asdict(sizes),
        "seconds": round(time.perf_counter() - began, 1),
        **results,
    }
    return write(report, results, args.out, "tiny" if args.tiny else "latest", args.only)


if __name__ == "__main__":
    sys.exit(main())
