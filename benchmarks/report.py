"""The benchmarks' report: the results of a run as a Markdown table (``latest.md``, which
docs/benchmarks.md includes), every target with its verdict, and how a run of some parts
(``--only``) merges into the last full report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import fanout

__all__ = ["markdown", "targets", "write"]


def markdown(r: dict[str, Any]) -> str:
    race, tp, listing, start, imp = r["race"], r["throughput"], r["listing"], r["startup"], r["import"]
    hot, http = r["hot_car"], r["http"]
    lines = [f"Run {r['date']} on {r['machine']} with `{r['command']}`."]
    for part, run in r.get("later", {}).items():
        lines.append(f"The {part} rows are from a later run, {run['date']}, with `{run['command']}`.")
    lines += [
        "",
        "| benchmark | result | baseline in the same run |",
        "|---|---|---|",
        f"| race: {race['clients']} clients x {len(race['runs'])} cars | winners {[x['winners'] for x in race['runs']]}, "
        f"double bookings **{race['double_bookings']}**, errors **{race['errors']}**, "
        f"p50 {race['p50_ms']} ms, p99 {race['p99_ms']} ms | exactly 1 winner per car |",
    ]
    hrace = r["http_race"]
    for name, label in (("direct", "PostgREST direct"), ("stack", "API port (nginx)")):
        side = hrace[name]
        lines.append(
            f"| race over HTTP, {label}: {hrace['clients']} users x {len(side['runs'])} cars (raw asyncio client) | "
            f"winners {[x['winners'] for x in side['runs']]}, double bookings **{side['double_bookings']}**, "
            f"errors **{side['errors']}**, p50 {side['p50_ms']} ms, p99 {side['p99_ms']} ms (all replies), "
            f"first request to last reply {side['span_ms']} ms (median run) | "
            + (
                "exactly 1 winner per car |"
                if name == "direct"
                else f"direct p99 {hrace['direct']['p99_ms']} ms; p99 stack/direct **{hrace['p99_ratio']}** "
                f"(p50 {hrace['p50_ratio']}) |"
            )
        )
    for lv in tp["levels"]:
        lines.append(
            f"| throughput, concurrency {lv['concurrency']} ({tp['cars']} cars x 2 users) | SDK {lv['sdk']}/s, "
            f"supabase-py {lv['supabase_py']}/s, HTTP {lv['http']}/s | pgbench {lv['pgbench']}/s; "
            f"SDK/supabase-py **{lv['sdk_vs_supabase_py']}**, HTTP/pgbench **{lv['http_vs_pgbench']}**, "
            f"supabase-py/pgbench {lv['supabase_py_vs_pgbench']}, SDK/pgbench {lv['sdk_vs_pgbench']} |"
        )
    for lv in hot["levels"]:
        lines.append(
            f"| hot car: {lv['concurrency']} clients on one booked car (pgbench, {hot['seconds']} s) | "
            f"read first (today) **{lv['read_first']}/s**, lock first (before) {lv['lock_first']}/s | "
            f"floor (`not_found`) {lv['floor']}/s; read first/floor **{lv['read_first_vs_floor']}**, "
            f"lock first/floor {lv['lock_first_vs_floor']} |"
        )
    lines.append(
        f"| other cars while 100 clients hammer a booked car (pgbench, c=8) | read first "
        f"{hot['other_cars_hammered']}/s, lock first {hot['other_cars_hammered_lock_first']}/s | "
        f"alone {hot['other_cars_alone']}/s; ratio **{hot['other_cars_ratio']}** "
        f"(lock first {hot['other_cars_ratio_lock_first']}) |"
    )
    for lv in http["levels"]:
        for what, label in (
            ("listing", "listing GET (page of 50)"),
            ("booking", "booking RPC (a new car each)"),
        ):
            stack_run, direct = lv[f"stack_{what}"], lv[f"direct_{what}"]
            lines.append(
                f"| wrk, {label}, c={lv['concurrency']} | API port (nginx) **{stack_run['rps']}/s**, "
                f"p99 {stack_run['p99_ms']} ms{_nginx_cost(lv.get(f'{what}_nginx_us'))} | "
                f"PostgREST direct {direct['rps']}/s, p99 {direct['p99_ms']} ms; "
                f"ratio **{lv[f'{what}_ratio']}**{_rounds(lv.get(f'{what}_ratios', []))} |"
            )
    if "fanout" in r:  # a report from before the benchmark existed has no fan-out rows
        lines += fanout.rows(r["fanout"])
    lines += [
        f"| listing: page of 50 of {listing['cars']:,} cars | SDK p50 {listing['sdk_p50_ms']} ms, "
        f"p99 {listing['sdk_p99_ms']} ms; index used: **{listing['index_used']}** | "
        f"raw HTTP p50 {listing['http_p50_ms']} ms, p99 {listing['http_p99_ms']} ms |",
        f"| `carbook stack start` | cold **{start['cold_s']} s**, warm **{start['warm_s']} s** (whole command: "
        f"{start['cold_wall_s']} s / {start['warm_wall_s']} s) | targets 10 s / 3 s |",
        f"| `carbook --help` | {start['help_s']} s | `python -c 'import typer'` {start['import_typer_s']} s; "
        f"ratio **{start['help_vs_typer']}** |",
        f"| `carbook cars import` of {imp['rows']} rows | c=1 {imp['c1_rows_per_s']} rows/s, "
        f"c=8 {imp['c8_rows_per_s']} rows/s | c8/c1 **{imp['c8_vs_c1']}**; cores busy c=1 {imp['c1_cores_busy']}, "
        f"c=8 {imp['c8_cores_busy']} of {imp['cores']}; CPU ms per row at c=8: "
        + ", ".join(f"{k} {v}" for k, v in sorted(imp["c8_cpu_ms_per_row"].items(), key=lambda kv: -kv[1]))
        + " |",
        "",
        "| target | result in the run above | met? |",
        "|---|---|---|",
    ]
    lines += [f"| {target} | {result} | {'yes' if met else '**no**'} |" for target, result, met in targets(r)]
    return "\n".join(lines) + "\n"


def _nginx_cost(us: float | None) -> str:
    """nginx's own CPU per request, where the run measured it."""
    return f"; nginx {us} µs of CPU per request" if us else ""


def _rounds(ratios: list[float]) -> str:
    """How a wrk row's ratio was reached, when it is the median of several rounds."""
    return f" (median of {len(ratios)} rounds: {', '.join(map(str, ratios))})" if len(ratios) > 1 else ""


def targets(r: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Each target of the benchmarks with its result in this run and whether it is met."""
    race, hrace, tp, hot, http = r["race"], r["http_race"], r["throughput"], r["hot_car"], r["http"]
    start, imp = r["startup"], r["import"]
    races = [race, hrace["direct"], hrace["stack"]]
    bad = sum(x["double_bookings"] for x in races), sum(x["errors"] for x in races)
    one_winner = all(run["winners"] == 1 for x in races for run in x["runs"])
    sdk = [lv["sdk_vs_supabase_py"] for lv in tp["levels"]]
    wrk = {
        f"{what} c={lv['concurrency']}": lv[f"{what}_ratio"]
        for lv in http["levels"]
        for what in ("listing", "booking")
    }
    read_first = [lv["read_first_vs_floor"] for lv in hot["levels"]]
    fan = [fanout.target(r["fanout"])] if "fanout" in r else []
    return [
        (
            "0 double bookings and 0 errors in every race run, exactly 1 winner per car",
            f"{bad[0]} and {bad[1]} over the SDK race and both HTTP races"
            + ("" if one_winner else "; a car without exactly 1 winner"),
            bad == (0, 0) and one_winner,
        ),
        ("SDK ≥ 0.9 x plain supabase-py at every concurrency", f"{min(sdk)} to {max(sdk)}", min(sdk) >= 0.9),
        (
            "API port (nginx) ≥ 0.85 x PostgREST direct, listing GET and booking RPC, c=8 and c=32 (wrk)",
            ", ".join(f"{k} {v}" for k, v in wrk.items())
            + (
                f" (the host took {http['cpu_steal']:.0%} of the CPU during the run: not an idle machine)"
                if (http.get("cpu_steal") or 0) > 0.05
                else ""
            ),
            min(wrk.values()) >= 0.85,
        ),
        (
            f"race of {hrace['clients']} through the API port: p99 ≤ {hrace['p99_target']} x the same race "
            "through PostgREST direct",
            f"p99 {hrace['stack']['p99_ms']} ms against {hrace['direct']['p99_ms']} ms: {hrace['p99_ratio']}",
            0 < hrace["p99_ratio"] <= hrace["p99_target"],
        ),
        (
            "hot car: read first ≥ 0.8 x the no-lock floor",
            ", ".join(
                f"{v} (c={lv['concurrency']})" for v, lv in zip(read_first, hot["levels"], strict=True)
            ),
            min(read_first) >= 0.8,
        ),
        (
            "other cars while 100 clients hammer a booked car ≥ 0.8 x alone",
            f"{hot['other_cars_ratio']} (lock first: {hot['other_cars_ratio_lock_first']})",
            hot["other_cars_ratio"] >= 0.8,
        ),
        (
            "cold `stack start` under 10 s, warm under 3 s",
            f"{start['cold_s']} s, {start['warm_s']} s",
            start["cold_s"] < 10 and start["warm_s"] < 3,
        ),
        (
            "`carbook cars import` c=8 ≥ 2 x c=1 (else: the limit, explained in docs/benchmarks.md)",
            str(imp["c8_vs_c1"]),
            imp["c8_vs_c1"] >= 2,
        ),
        (
            '`carbook --help` ≤ 2 x `python -c "import typer"`',
            str(start["help_vs_typer"]),
            start["help_vs_typer"] <= 2,
        ),
        *fan,
    ]


def write(
    report: dict[str, Any], results: dict[str, Any], out: Path, name: str, only: list[str] | None
) -> int:
    """Write a run's report as ``out/<name>.json`` and ``.md``. A run of ``only`` some parts
    replaces the same rows of the last full report (and says which rows are from which
    run); with no full report yet it prints its results and writes nothing."""
    if only:
        print(json.dumps(results, indent=2))
        try:
            previous = json.loads((out / f"{name}.json").read_text())
        except (OSError, ValueError):
            return 0  # nothing to merge into: only a full run writes a report
        command = "bash scripts/bench.sh " + " ".join(f"--only {n}" for n in only)
        later = {
            **previous.get("later", {}),
            **{n: {"date": report["date"], "command": command} for n in results},
        }
        report = {**previous, **results, "later": later}
        (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / f"{name}.md").write_text(markdown(report))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown(report))
    print(markdown(report))
    return 0
