"""Every benchmark runs at tiny size, so none can rot. Behaviour only: no speed is asserted."""

from __future__ import annotations

import asyncio

from benchmarks.run import TINY, markdown, run_all, targets

from carbook_stack.manager import LocalStack


def test_every_benchmark_runs_at_tiny_size(stack: LocalStack) -> None:
    results = asyncio.run(run_all(stack, TINY))
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
    table = markdown({"date": "today", "machine": "here", "command": "tiny", **results})
    # header, race, two HTTP race rows, a row per level, two hot-car rows and the
    # other-cars row, four wrk rows, listing, start, help, import; then the targets'
    # header and a verdict per target
    assert table.count("\n| ") == 2 + 2 + len(levels) + 3 + 4 + 4 + 1 + len(targets(results))
    assert "race of 5 through the API port: p99 ≤ 1.3" in table


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
