"""Every benchmark runs at tiny size, so none can rot. Behaviour only: no speed is asserted."""

from __future__ import annotations

import asyncio

from benchmarks.run import TINY, markdown, run_all

from carbook_sdk.stack.manager import LocalStack


def test_every_benchmark_runs_at_tiny_size(stack: LocalStack) -> None:
    results = asyncio.run(run_all(stack, TINY))
    race = results["race"]
    assert [r["winners"] for r in race["runs"]] == [1] * TINY.race_runs
    assert race["double_bookings"] == 0 and race["errors"] == 0
    levels = results["throughput"]["levels"]
    assert [lv["concurrency"] for lv in levels] == list(TINY.tp_levels)
    assert all(lv[k] > 0 for lv in levels for k in ("pgbench", "http", "supabase_py", "sdk"))
    assert results["listing"]["index_used"] is True
    assert results["import"]["c1_imported"] == results["import"]["c8_imported"] == TINY.import_rows
    assert results["startup"]["cold_s"] > 0 and results["startup"]["warm_s"] > 0
    table = markdown({"date": "today", "machine": "here", "command": "tiny", **results})
    # header, race, one row per level, listing, start, help, import
    assert table.count("\n| ") == 2 + len(levels) + 4
