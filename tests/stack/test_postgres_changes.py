"""Realtime's postgres_changes on the local stack: the changes PostgreSQL decodes (wal2json,
a temporary slot), to supabase-py's realtime client and raw Phoenix frames, each change to
the subscribers whose role and claims may select the row."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from realtime import AsyncRealtimeClient
from websockets.asyncio.client import connect

from carbook_sdk import Database
from carbook_stack import LocalPostgres
from carbook_stack.local_postgres import free_port, port_in_use
from carbook_stack.manager import LocalStack
from carbook_stack.realtime.changes import SLOT_PREFIX
from carbook_stack.realtime.server import RealtimeServer

from ..helpers import Raw, make_cars, make_users, stack_db

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _ws(stack: LocalStack) -> str:
    s = stack.settings
    return f"ws://{s.host}:{s.api_port}/realtime/v1/websocket?apikey={s.publishable_key}&vsn=1.0.0"


def _user_token(stack: LocalStack, user_id: str | None, expires_in: float = 600) -> str:
    claims: dict[str, Any] = {
        "role": "authenticated" if user_id else "anon",
        "exp": int(time.time() + expires_in),
    }
    if user_id:
        claims |= {"sub": user_id, "aud": "authenticated"}
    return stack.settings.keys().sign(claims)


def _sql(stack: LocalStack, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with stack_db(stack) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def _new_car(stack: LocalStack, model: str, *, published: bool = True, year: int = 2024) -> str:
    (row,) = _sql(
        stack,
        """insert into public.cars (make, model, year, image_path, is_published, price_in_paise)
           values ('Kia', %s, %s, 'cars/x.png', %s, 100000) returning id::text""",
        (model, year, published),
    )
    return str(row[0])


async def _until(events: list[Any], done: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; heard {events}")
        await asyncio.sleep(0.02)


def test_supabase_py_hears_each_event_and_filter_it_asked_for_and_nothing_else(stack: LocalStack) -> None:
    tag = f"pc-{uuid.uuid4().hex[:6]}"
    car1, car2 = make_cars(stack, 2, tag)
    ((uid, _),) = make_users(stack, 1, tag)
    heard: dict[str, list[tuple[str, str]]] = {"ins": [], "upd": [], "del": [], "all": []}
    sentinel_model = f"{tag}-sentinel"

    def keep(name: str) -> Callable[[Any], None]:
        def got(p: Any) -> None:
            data = p["data"]
            row = data.get("record") or data.get("old_record") or {}
            heard[name].append((data["type"], row.get("model") or row.get("id")))

        return got

    async def scenario() -> tuple[list[str], dict[str, Any]]:
        client = AsyncRealtimeClient(stack.settings.api_url + "/realtime/v1", stack.settings.publishable_key)
        await client.set_auth(_user_token(stack, uid))
        ch = client.channel(f"changes-{tag}")
        ch.on_postgres_changes("INSERT", keep("ins"), table="cars", schema="public")
        ch.on_postgres_changes("UPDATE", keep("upd"), table="cars", filter=f"id=eq.{car1}")
        ch.on_postgres_changes("DELETE", keep("del"), table="cars", filter=f"id=in.({car1},{car2})")
        ch.on_postgres_changes("*", keep("all"), table="cars", filter="year=gte.2030")
        states: list[str] = []
        systems: list[Any] = []
        ch.on_system(systems.append)
        await ch.subscribe(lambda s, e: states.append(str(s.value)))
        await _until(systems, lambda: bool(systems))
        a = _new_car(stack, f"{tag}-a")
        b = _new_car(stack, f"{tag}-b", year=2031)
        _sql(
            stack,
            "update public.cars set price_in_paise = 200000 where id = any(%s::uuid[])",
            ([car1, car2, b],),
        )
        # Realtime reads a row's RLS as it is when the change is polled (a row deleted by
        # then is not shown): the deletes wait until the rest is heard.
        await _until(heard["all"], lambda: len(heard["all"]) == 2 and len(heard["upd"]) == 1)
        _sql(stack, "delete from public.cars where id = any(%s::uuid[])", ([car1, a, b],))
        _new_car(stack, sentinel_model)  # heard last: everything before it has been delivered
        await _until(heard["ins"], lambda: any(m == sentinel_model for _, m in heard["ins"]))
        await client.close()
        return states, dict(systems[0])

    states, system = asyncio.run(scenario())
    assert states == ["SUBSCRIBED"]
    assert (system["extension"], system["status"], system["message"]) == (
        "postgres_changes",
        "ok",
        "Subscribed to PostgreSQL",
    )
    assert heard["ins"] == [("INSERT", f"{tag}-a"), ("INSERT", f"{tag}-b"), ("INSERT", sentinel_model)]
    assert heard["upd"] == [("UPDATE", f"{tag}-1")]
    # A delete's old record is its key (replica identity default): the id filter matches it.
    assert heard["del"] == [("DELETE", car1)]
    # The year filter sees b's insert and update; its delete carries no year, so it does not match.
    assert heard["all"] == [("INSERT", f"{tag}-b"), ("UPDATE", f"{tag}-b")]


def test_each_change_reaches_only_who_may_select_the_row_and_only_the_columns_they_may(
    stack: LocalStack,
) -> None:
    tag = f"pr-{uuid.uuid4().hex[:6]}"
    (car,) = make_cars(stack, 1, tag)
    (alice, _), (bob, _) = make_users(stack, 2, tag)
    schema = f"pc_{uuid.uuid4().hex[:6]}"
    # A table whose `secret` column no API role may select, and whose rows only their owner may.
    _sql(
        stack,
        f"""create schema {schema};
            grant usage on schema {schema} to anon, authenticated;
            create table {schema}.notes (id int primary key, owner uuid, body text, secret text);
            alter table {schema}.notes replica identity full;
            alter table {schema}.notes enable row level security;
            grant select (id, owner, body) on {schema}.notes to authenticated;
            create policy own on {schema}.notes for select to authenticated using (owner = (select auth.uid()));
            alter publication supabase_realtime add table {schema}.notes""",
    )
    try:
        out = asyncio.run(_rls_scenario(stack, tag, car, alice, bob, schema))
    finally:
        _sql(
            stack,
            f"alter publication supabase_realtime drop table {schema}.notes; drop schema {schema} cascade",
        )
    who = {name: [(d["type"], d["table"], _key(d)) for d in msgs] for name, msgs in out.items()}
    hidden = f"{tag}-hidden"
    sentinel = f"{tag}-sentinel"  # the model of two cars inserted after each step
    # Bob's booking is seen by Bob alone; the unpublished car by nobody until it is published.
    assert who["alice"] == [
        ("UPDATE", "cars", hidden),
        ("INSERT", "notes", 1),
        ("UPDATE", "notes", 1),
        ("INSERT", "cars", sentinel),
        ("DELETE", "notes", 1),
        ("DELETE", "notes", 2),  # a delete is not RLS-checked (Realtime cannot): its key only
        ("INSERT", "cars", sentinel),
    ]
    assert who["bob"] == [
        ("UPDATE", "cars", f"{tag}-1"),
        ("UPDATE", "cars", hidden),
        ("INSERT", "notes", 2),
        ("INSERT", "cars", sentinel),
        ("DELETE", "notes", 1),
        ("DELETE", "notes", 2),
        ("INSERT", "cars", sentinel),
    ]
    # Anonymous visitors never hear of a booking; of the notes, whose key their role may
    # not select, they get Realtime's 401 with no data, and no delete at all.
    assert who["anon"] == [
        ("UPDATE", "cars", hidden),
        ("INSERT", "notes", None),
        ("INSERT", "notes", None),
        ("UPDATE", "notes", None),
        ("INSERT", "cars", sentinel),
        ("INSERT", "cars", sentinel),
    ]
    for d in (d for d in out["anon"] if d["table"] == "notes"):
        assert (d["errors"], d["columns"], d["record"]) == (["Error 401: Unauthorized"], [], {})
    booking = next(d for d in out["bob"] if d["type"] == "UPDATE" and d["table"] == "cars")
    assert booking["record"]["booked_by"] == bob and booking["old_record"] == {"id": car}
    notes = [d for d in out["alice"] if d["table"] == "notes"]
    assert len(notes) == 4
    for d in notes:
        assert [c["name"] for c in d["columns"]] == ["id", "owner", "body"]
        assert "secret" not in json.dumps(d)
    assert notes[0]["record"] == {"id": 1, "owner": alice, "body": "hi"}
    # Replica identity full: the update's old row, in the columns the role may select.
    assert notes[1]["old_record"] == {"id": 1, "owner": alice, "body": "hi"}
    assert [d["old_record"] for d in notes[2:]] == [{"id": 1}, {"id": 2}]
    assert all(d["errors"] is None and d["commit_timestamp"].endswith("Z") for d in notes)


def _key(data: dict[str, Any]) -> Any:
    row = data.get("record") or data.get("old_record") or {}
    return row.get("model") or row.get("id")


async def _rls_scenario(
    stack: LocalStack, tag: str, car: str, alice: str, bob: str, schema: str
) -> dict[str, list[dict[str, Any]]]:
    subscribers = {"alice": alice, "bob": bob, "anon": None}
    raws = {name: Raw(await connect(_ws(stack))) for name in subscribers}
    bindings = [
        {"event": "*", "schema": "public", "table": "cars"},
        {"event": "*", "schema": schema, "table": "notes"},
    ]
    for name, uid in subscribers.items():
        reply = await raws[name].join(
            f"realtime:rls-{tag}",
            {"config": {"postgres_changes": bindings}, "access_token": _user_token(stack, uid)},
        )
        assert reply["status"] == "ok", reply
        assert [b["table"] for b in reply["response"]["postgres_changes"]] == ["cars", "notes"]
        system = await raws[name].next("system")
        assert system["payload"]["status"] == "ok", system
    hidden = _new_car(stack, f"{tag}-hidden", published=False)
    with stack_db(stack) as conn:  # Bob books, as the API would run it
        conn.execute("set role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, false)",
            (json.dumps({"sub": bob, "role": "authenticated"}),),
        )
        assert conn.execute("select public.book_car_atomic(%s)", (car,)).fetchone()[0]["success"]  # type: ignore[index]
    _sql(stack, "update public.cars set is_published = true where id = %s", (hidden,))
    _sql(
        stack,
        f"insert into {schema}.notes values (1, %s, 'hi', 's3cret'), (2, %s, 'yo', 's3cret')",
        (alice, bob),
    )
    _sql(stack, f"update {schema}.notes set body = 'bye' where id = 1")
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in raws}
    await _heard_until(raws, out, _new_car(stack, f"{tag}-sentinel"))
    # Deleted only once the rest is heard: an insert is shown if the row may be read when
    # it is polled, and a row deleted by then could not be.
    _sql(stack, f"delete from {schema}.notes where id = 1")
    _sql(stack, f"delete from {schema}.notes where id = 2")
    await _heard_until(raws, out, _new_car(stack, f"{tag}-sentinel"))
    for raw in raws.values():
        await raw.ws.close()
    return out


async def _heard_until(raws: dict[str, Raw], out: dict[str, list[dict[str, Any]]], sentinel: str) -> None:
    for name, raw in raws.items():
        while not out[name] or (out[name][-1].get("record") or {}).get("id") != sentinel:
            msg = await raw.next("postgres_changes", timeout=10)
            out[name].append(msg["payload"]["data"])


def test_bad_bindings_get_realtimes_errors_and_the_service_keeps_serving(stack: LocalStack) -> None:
    tag = f"pb-{uuid.uuid4().hex[:6]}"

    async def scenario() -> dict[str, Any]:
        raw = Raw(await connect(_ws(stack)))
        out: dict[str, Any] = {}

        async def system_for(topic: str, binding: Any) -> Any:
            reply = await raw.join(f"realtime:{topic}", {"config": {"postgres_changes": [binding]}})
            if reply["status"] != "ok":
                return reply
            return (await raw.next("system"))["payload"]

        out["unknown_table"] = await system_for("a", {"event": "*", "schema": "public", "table": "nope"})
        out["not_published"] = await system_for(
            "b", {"event": "*", "schema": "public", "table": "user_roles"}
        )
        out["bad_op"] = await system_for(
            "c", {"event": "*", "schema": "public", "table": "cars", "filter": "year=foo.1"}
        )
        out["no_op"] = await system_for(
            "d", {"event": "*", "schema": "public", "table": "cars", "filter": "year"}
        )
        out["bad_in"] = await system_for(
            "e", {"event": "*", "schema": "public", "table": "cars", "filter": "year=in.1"}
        )
        out["bad_value"] = await system_for(
            "f", {"event": "*", "schema": "public", "table": "cars", "filter": "year=eq.abc"}
        )
        out["bad_column"] = await system_for(
            "g", {"event": "*", "schema": "public", "table": "cars", "filter": "nope=eq.1"}
        )
        out["wrong_types"] = await system_for("h", {"event": "INSERT", "schema": 1, "table": "cars"})
        out["not_a_map"] = await system_for("i", 7)
        # The same socket still subscribes, and hears its change.
        reply = await raw.join(
            "realtime:ok",
            {
                "config": {
                    "postgres_changes": [
                        {"event": "INSERT", "schema": "public", "table": "cars", "filter": f"model=eq.{tag}"}
                    ]
                }
            },
        )
        out["good_reply"] = reply
        out["good_system"] = (await raw.next("system"))["payload"]["message"]
        _new_car(stack, tag)
        msg = await raw.next("postgres_changes", timeout=10)
        out["heard"] = (msg["topic"], msg["payload"]["ids"], msg["payload"]["data"]["record"]["model"])
        await raw.ws.close()
        return out

    out = asyncio.run(scenario())
    unable = "Unable to subscribe to changes with given parameters. "
    assert (
        out["unknown_table"]["extension"] == "postgres_changes" and out["unknown_table"]["status"] == "error"
    )
    assert out["unknown_table"]["message"] == (
        unable + "Please check Realtime is enabled for the given connect parameters: "
        "[event: *, schema: public, table: nope, filters: [], select: nil]"
    )
    assert out["not_published"]["message"].startswith(unable + "Please check Realtime is enabled")
    assert out["bad_op"]["message"] == 'Error parsing `filter` params: ["foo", "1"]'
    assert out["no_op"]["message"] == 'Error parsing `filter` params: ["year"]'
    assert (
        out["bad_in"]["message"]
        == "Error parsing `filter` params: `in` filter value must be wrapped by parentheses"
    )
    assert out["bad_value"]["message"] == (
        unable + "An exception happened so please check your connect parameters: "
        '[event: *, schema: public, table: cars, filters: [{"year", "eq", "abc", false}], select: nil]. '
        'Exception: ERROR 22P02 (invalid_text_representation) invalid input syntax for type integer: "abc"'
    )
    assert out["bad_column"]["message"].endswith(
        "Exception: ERROR P0001 (raise_exception) invalid column for filter nope"
    )
    assert out["wrong_types"]["message"].startswith(
        "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: %{"
    )
    assert out["not_a_map"] == {
        "status": "error",
        "response": {"reason": "UnknownErrorOnChannel: expected a map, got: 7"},
    }
    (binding,) = out["good_reply"]["response"]["postgres_changes"]
    assert binding["table"] == "cars" and isinstance(binding["id"], int) and binding["id"] > 0
    assert out["good_system"] == "Subscribed to PostgreSQL"
    assert out["heard"] == ("realtime:ok", [binding["id"]], tag)


def test_an_expired_token_ends_the_subscription_and_a_refreshed_one_keeps_it(stack: LocalStack) -> None:
    tag = f"pt-{uuid.uuid4().hex[:6]}"
    ((uid, _),) = make_users(stack, 1, tag)
    binding = {"event": "INSERT", "schema": "public", "table": "cars", "filter": f"make=eq.{tag}"}

    async def scenario() -> tuple[list[str], list[str], list[Any]]:
        ending, kept = Raw(await connect(_ws(stack))), Raw(await connect(_ws(stack)))
        for raw in (ending, kept):
            joined = {"config": {"postgres_changes": [binding]}, "access_token": _user_token(stack, uid, 3)}
            assert (await raw.join(f"realtime:{tag}", joined))["status"] == "ok"
            assert (await raw.next("system"))["payload"]["status"] == "ok"
        await kept.send(f"realtime:{tag}", "access_token", {"access_token": _user_token(stack, uid, 600)})
        ended = [
            (await ending.next("system", timeout=8))["payload"]["message"],
            (await ending.next("phx_close"))["event"],
        ]
        _sql(
            stack,
            "insert into public.cars (make, model, year, is_published) values (%s, 'x', 2024, true)",
            (tag,),
        )
        got = [(await kept.next("postgres_changes", timeout=10))["payload"]["data"]["record"]["make"]]
        late: list[Any] = []
        with pytest.raises(TimeoutError):  # the change went out to `kept`: `ending` got none
            late.append(await ending.next("postgres_changes", timeout=0.5))
        for raw in (ending, kept):
            await raw.ws.close()
        return ended, got, late

    ended, got, late = asyncio.run(scenario())
    assert ended[0].startswith("Token has expired") and ended[1] == "phx_close"
    assert got == [tag] and late == []


def _slots(stack: LocalStack) -> list[tuple[str, bool, bool]]:
    rows = _sql(
        stack,
        "select slot_name, temporary, active from pg_replication_slots where slot_name like %s order by 1",
        (SLOT_PREFIX.replace("_", "\\_") + "%",),
    )
    return [(str(r[0]), bool(r[1]), bool(r[2])) for r in rows]


def test_a_killed_realtime_leaves_no_replication_slot_after_the_next_start(stack: LocalStack) -> None:
    binding = {"event": "*", "schema": "public", "table": "cars"}

    async def subscribe() -> None:
        raw = Raw(await connect(_ws(stack)))
        assert (await raw.join("realtime:slots", {"config": {"postgres_changes": [binding]}}))[
            "status"
        ] == "ok"
        assert (await raw.next("system"))["payload"]["status"] == "ok"
        await raw.ws.close()

    asyncio.run(subscribe())
    before = _slots(stack)
    assert len(before) == 1 and before[0][1:] == (True, True), before  # temporary, in use
    pid = stack.realtime.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    stack.start()
    deadline = time.monotonic() + 10
    while _slots(stack) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _slots(stack) == []
    asyncio.run(subscribe())  # the new service makes its own
    after = _slots(stack)
    assert len(after) == 1 and after[0][0] != before[0][0]


def test_a_database_without_logical_decoding_refuses_postgres_changes_with_a_clear_message(
    stack: LocalStack,
) -> None:
    """A Realtime pointed at a cluster whose wal_level is replica: the join stays, its
    subscription is refused in one line, and the service serves the rest."""
    base = tempfile.mkdtemp(prefix="carbook-replica-")
    os.chmod(base, 0o755)
    pg = LocalPostgres(Path(base) / "pg", port=free_port(), fast=True, wal_level="replica")
    pg.start()
    try:
        Database(pg.url()).migrate()
        port = free_port()
        settings = stack.settings.model_copy(
            update={"db_port": pg.port, "realtime_port": port, "realtime_api_port": free_port(avoid={port})}
        )
        out = asyncio.run(_replica_scenario(settings))
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    assert out["reply"] == "ok"
    assert out["system"] == {
        "extension": "postgres_changes",
        "status": "error",
        "message": "Unable to subscribe to changes: the database does not decode its changes "
        "(wal_level is replica, it must be logical; restart the stack)",
        "channel": "cars",
    }
    assert out["alive"] == {"status": "ok", "response": {}}


async def _replica_scenario(settings: Any) -> dict[str, Any]:
    stop = asyncio.Event()
    service = asyncio.create_task(RealtimeServer(settings).run(stop))
    try:
        deadline = time.monotonic() + 10
        while not port_in_use(settings.realtime_port, settings.host):
            assert time.monotonic() < deadline and not service.done(), "the service did not start"
            await asyncio.sleep(0.02)
        url = f"ws://{settings.host}:{settings.realtime_port}/realtime/v1/websocket?apikey={settings.publishable_key}"
        raw = Raw(await connect(url))
        binding = {"event": "*", "schema": "public", "table": "cars"}
        reply = await raw.join("realtime:cars", {"config": {"postgres_changes": [binding]}})
        system = (await raw.next("system"))["payload"]
        await raw.send("phoenix", "heartbeat", {})
        alive = (await raw.next("phx_reply"))["payload"]
        await raw.ws.close()
        return {"reply": reply["status"], "system": system, "alive": alive}
    finally:
        stop.set()
        await service
