"""Every benchmark runs at tiny size, so none can rot. Behaviour only: no speed is asserted."""

from __future__ import annotations

import asyncio

from benchmarks import fanout
from benchmarks.report import markdown, targets
from benchmarks.run import BENCHMARKS, TINY, run_all

from carbook_stack.manager import LocalStack


def test_every_benchmark_runs_at_tiny_size(stack: LocalStack) -> None:
    # The fan-out has a test of its own below (it checks every delivery).
    results = asyncio.run(run_all(stack, TINY, set(BENCHMARKS) - {"fanout"}))
    race = results["race"]
    assert [r["winners"] for r in race["runs"]] == [1] * TINY.race_runs
    assert race["double_bookings"] == 0 and race["errors"] == 0
    hrace = results["http_race"]
    for side in ("direct", "stack"):
        assert [r["winners"] for r in hrace[side]["runs"]] == [1] * TINY.race_runs, hrace[side]
        assert hrace[side]["double_bookings"] == 0 and hrace[side]["errors"] == 0, hrace[side]
        assert [r["losers"] for r in hrace[side]["runs"]] == [TINY.race_clients - 1] * TINY.race_runs
    assert hrace["p99_ratio"] > 0
    levels = results["throughput"]["levels"]
    assert [lv["concurrency"] for lv in levels] == list(TINY.tp_levels)
    assert all(lv[k] > 0 for lv in levels for k in ("pgbench", "http", "supabase_py", "sdk"))
    assert results["listing"]["index_used"] is True
    assert results["import"]["c1_imported"] == results["import"]["c8_imported"] == TINY.import_rows
    start = results["startup"]
    assert start["cold_s"] > 0 and start["warm_s"] > 0
    assert start["cold_wall_s"] >= start["cold_s"] and start["warm_wall_s"] >= start["warm_s"]
    hot = results["hot_car"]
    assert [lv["concurrency"] for lv in hot["levels"]] == [8, 32]
    assert all(lv[k] > 0 for lv in hot["levels"] for k in ("read_first", "lock_first", "floor"))
    assert hot["other_cars_alone"] > 0 and hot["other_cars_hammered"] > 0
    http = results["http"]
    assert [lv["concurrency"] for lv in http["levels"]] == [8, 32]
    for lv in http["levels"]:
        for key in ("stack_listing", "direct_listing", "stack_booking", "direct_booking"):
            assert lv[key]["rps"] > 0 and lv[key]["non_2xx"] == 0, (key, lv[key])
        # The gateway's own CPU per request is read for every stack run, never a direct one.
        for what in ("listing", "booking"):
            assert lv[f"stack_{what}"]["nginx_us_per_request"] >= 0
            assert "nginx_us_per_request" not in lv[f"direct_{what}"]
            assert len(lv[f"{what}_ratios"]) == TINY.http_rounds
    table = markdown({"date": "today", "machine": "here", "command": "tiny", **results})
    # header, race, two HTTP race rows, a row per level, two hot-car rows and the
    # other-cars row, four wrk rows, listing, start, help, import; then the targets'
    # header and a verdict per target
    assert table.count("\n| ") == 2 + 2 + len(levels) + 3 + 4 + 4 + 1 + len(targets(results))
    assert "race of 5 through the API port: p99 ≤ 1.3" in table


def test_fanout_at_tiny_size_every_watcher_hears_every_event(stack: LocalStack) -> None:
    fan = asyncio.run(run_all(stack, TINY, {"fanout"}))["fanout"]
    n, k, burst = TINY.fanout_watchers, TINY.fanout_bookings, TINY.fanout_burst
    # "delivered" counts (watcher, event) pairs, each once: equal to n x events means
    # every watcher heard every booking and every socket broadcast.
    for part, watchers, events in (
        (fan["floor"]["db"], 1, k),
        (fan["floor"]["socket"], 1, k),
        (fan["db"], n, k),
        (fan["socket"], n, k),
        (fan["burst_run"], n, burst),
    ):
        assert part["events"] == events and part["delivered"] == watchers * events, part
        assert part["missing"] == 0 and part["max_ms"] >= part["p99_ms"] >= part["p50_ms"], part
    assert fan["duplicates"] == 0
    assert fan["burst_run"]["delivered_per_s"] > 0 and fan["burst_run"]["committed_per_s"] > 0
    assert set(fan["rss_kib_per_connection"]) == {"realtime", "nginx"}
    assert set(fan["cpu_us_per_delivery"]) == {"realtime", "nginx", "client"}
    rows = fanout.rows(fan)
    assert len(rows) == 3 and all(row.startswith("| ") and row.endswith(" |") for row in rows)
    assert f"{n * k} deliveries (missing 0)" in rows[0]
    name, result, met = fanout.target(fan)
    assert "p50 ≤ 46 ms and p99 ≤ 159 ms" in name and f"p50 {fan['db']['p50_ms']} ms" in result
    assert met == fan["met"] and (fan["why"] == "") == met


def test_the_bench_command_itself_runs() -> None:
    """`bash scripts/bench.sh` as a user runs it: argument parsing, its own stack, the report."""
    import json
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        ["bash", "scripts/bench.sh", "--tiny", "--only", "race"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    race = json.loads(result.stdout)["race"]
    assert race["double_bookings"] == 0 and race["errors"] == 0
    bad = subprocess.run(
        ["bash", "scripts/bench.sh", "--only", "nonsense"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "invalid choice: 'nonsense'" in bad.stderr


def test_fanout_watchers_cut_frames_out_of_any_chunking() -> None:
    """The raw client's frame parser: frames of each length encoding (7-bit, 16-bit,
    64-bit), arriving whole, together, or a byte at a time, come out the same."""
    from benchmarks.watchers import _Socket

    def server_frame(payload: bytes) -> bytes:
        n = len(payload)
        if n < 126:
            return bytes([0x81, n]) + payload
        if n < 65536:
            return bytes([0x81, 126]) + n.to_bytes(2, "big") + payload
        return bytes([0x81, 127]) + n.to_bytes(8, "big") + payload

    payloads = [b"x" * 5, b"y" * 300, b"z" * 70_000]
    stream = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n" + b"".join(
        server_frame(p) for p in payloads
    )

    async def cut(size: int) -> list[bytes]:
        got: list[bytes] = []
        sock = _Socket(0, b"", lambda _s, opcode, payload, _t: got.append(payload))
        for i in range(0, len(stream), size):
            sock.data_received(stream[i : i + size])
        assert sock.open.done() and sock.buf == b""
        return got

    for size in (1, 7, 4096, len(stream)):
        assert asyncio.run(cut(size)) == payloads, size
