"""Realtime on the local stack through the clients apps use (supabase-py's realtime, and
raw Phoenix frames where a client would never send what is tested), behind nginx."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from realtime import AsyncRealtimeClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from carbook_stack.manager import LocalStack

from ..helpers import Raw, make_cars, make_users, stack_db

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

AVAILABILITY = "cars:availability"


def _url(stack: LocalStack, key: str | None = None, vsn: str = "1.0.0") -> str:
    s = stack.settings
    return f"ws://{s.host}:{s.api_port}/realtime/v1/websocket?apikey={key or s.publishable_key}&vsn={vsn}"


def _private(token: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"config": {"broadcast": {"self": False}, "private": True}}
    if token:
        payload["access_token"] = token
    return payload


def _token(stack: LocalStack, expires_in: float, role: str = "anon") -> str:
    return stack.settings.keys().sign({"role": role, "exp": int(time.time() + expires_in), "iss": "test"})


def test_supabase_py_clients_broadcast_to_each_other_with_self_and_ack(stack: LocalStack) -> None:
    async def scenario() -> tuple[list[Any], list[Any], list[Any]]:
        url = stack.settings.api_url + "/realtime/v1"
        a, b = (
            AsyncRealtimeClient(url, stack.settings.publishable_key),
            AsyncRealtimeClient(url, stack.settings.anon_key),
        )
        got_a: list[Any] = []
        got_b: list[Any] = []
        states: list[Any] = []
        room = f"room-{uuid.uuid4().hex[:8]}"
        ch_a = a.channel(room, {"config": {"broadcast": {"self": True, "ack": True}, "private": False}})
        ch_a.on_broadcast("move", got_a.append)
        ch_b = b.channel(room)
        ch_b.on_broadcast("move", got_b.append)
        await ch_a.subscribe(lambda s, e: states.append(s))
        await ch_b.subscribe(lambda s, e: states.append(s))
        await ch_a.send_broadcast("move", {"x": 1})
        await ch_b.send_broadcast("move", {"x": 2})  # b did not ask for self: only a hears it
        for _ in range(50):
            if len(got_a) == 2 and got_b:
                break
            await asyncio.sleep(0.05)
        await a.close()
        await b.close()
        return states, got_a, got_b

    states, got_a, got_b = asyncio.run(scenario())
    assert [str(s.value) for s in states] == ["SUBSCRIBED", "SUBSCRIBED"]
    assert sorted(m["payload"]["x"] for m in got_a) == [1, 2]
    assert [m["payload"] for m in got_b] == [{"x": 1}]


def test_presence_state_and_diffs_reach_every_member(stack: LocalStack) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        url = stack.settings.api_url + "/realtime/v1"
        a, b = (
            AsyncRealtimeClient(url, stack.settings.publishable_key),
            AsyncRealtimeClient(url, stack.settings.publishable_key),
        )
        room = f"car-{uuid.uuid4().hex[:8]}"
        ch_a = a.channel(room, {"config": {"presence": {"key": "alice", "enabled": True}, "private": False}})
        ch_b = b.channel(room, {"config": {"presence": {"key": "bob", "enabled": True}, "private": False}})
        ch_a.on_presence_sync(lambda: None)
        ch_b.on_presence_sync(lambda: None)
        await ch_a.subscribe()
        await ch_b.subscribe()
        await ch_a.track({"looking_at": "car-1"})
        await ch_b.track({"looking_at": "car-1"})
        await asyncio.sleep(0.3)
        both = dict(ch_a.presence_state())
        await ch_b.untrack()
        await asyncio.sleep(0.3)
        after = dict(ch_a.presence_state())
        await a.close()
        await b.close()
        return both, after

    both, after = asyncio.run(scenario())
    assert sorted(both) == ["alice", "bob"] and both["bob"][0]["looking_at"] == "car-1"
    assert sorted(after) == ["alice"]


def test_every_watcher_hears_exactly_one_booked_event_in_a_race_of_50(stack: LocalStack) -> None:
    tag = f"rt-race-{uuid.uuid4().hex[:6]}"
    (car,) = make_cars(stack, 1, tag)
    users = make_users(stack, 50, tag)

    async def scenario() -> list[list[dict[str, Any]]]:
        watchers = [Raw(await connect(_url(stack))) for _ in range(5)]
        for w in watchers:
            reply = await w.join(f"realtime:{AVAILABILITY}", _private())
            assert reply["status"] == "ok", reply
        # 50 bookers at once, each its own transaction as the API would run it.
        await asyncio.gather(*(asyncio.to_thread(_book, stack, car, uid) for uid, _ in users))

        async def heard(w: Raw) -> list[dict[str, Any]]:
            events: list[dict[str, Any]] = []
            with pytest.raises(TimeoutError):  # everything sent has arrived once it goes quiet
                while True:
                    msg = await w.next("broadcast", timeout=1.0)
                    if msg["payload"]["payload"]["id"] == car:
                        events.append(msg["payload"])
            await w.ws.close()
            return events

        return list(await asyncio.gather(*(heard(w) for w in watchers)))

    seen = asyncio.run(scenario())
    for events in seen:
        assert [e["event"] for e in events] == ["booked"]
        assert set(events[0]["payload"]) == {
            "id",
            "kind",
            "listed",
            "status",
            "price_in_paise",
            "currency",
            "version",
        }


def _book(stack: LocalStack, car: str, user_id: str) -> None:
    with stack_db(stack) as conn:
        conn.execute("set role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, false)",
            (json.dumps({"sub": user_id, "role": "authenticated"}),),
        )
        conn.execute("select public.book_car_atomic(%s)", (car,))


def test_a_private_topic_without_a_policy_is_refused_and_nobody_may_send_to_availability(
    stack: LocalStack,
) -> None:
    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        raw = Raw(await connect(_url(stack)))
        refused = await raw.join("realtime:secret-room", _private())
        listener, liar = Raw(await connect(_url(stack))), Raw(await connect(_url(stack)))
        assert (await listener.join(f"realtime:{AVAILABILITY}", _private()))["status"] == "ok"
        assert (await liar.join(f"realtime:{AVAILABILITY}", _private()))["status"] == "ok"
        fake = {"type": "broadcast", "event": "booked", "payload": {"id": "fake"}}
        await liar.send(f"realtime:{AVAILABILITY}", "broadcast", fake)
        heard: list[dict[str, Any]] = []
        with pytest.raises(TimeoutError):
            heard.append(await listener.next("broadcast", timeout=0.8))
        for c in (raw, listener, liar):
            await c.ws.close()
        return refused, heard

    refused, heard = asyncio.run(scenario())
    assert refused == {
        "status": "error",
        "response": {
            "reason": "Unauthorized: You do not have permissions to read from this Channel topic: secret-room"
        },
    }
    assert heard == []


def test_bad_joins_and_frames_get_realtimes_replies_and_the_service_lives(stack: LocalStack) -> None:
    async def scenario() -> dict[str, Any]:
        raw = Raw(await connect(_url(stack)))
        out: dict[str, Any] = {}
        out["no_topic"] = await raw.join("realtime:", {})
        out["unknown_topic"] = await raw.join("lobby:1", {})
        out["not_a_map"] = await raw.join("realtime:x", [1, 2])
        out["malformed_jwt"] = await raw.join("realtime:x", {"access_token": "not-a-jwt"})
        out["expired"] = await raw.join("realtime:x", {"access_token": _token(stack, -30)})
        await raw.ws.send("{not json")  # ignored
        await raw.ws.send(
            json.dumps({"topic": "realtime:nowhere", "event": "broadcast", "payload": {}, "ref": "9"})
        )
        out["unjoined"] = (await raw.next("phx_reply"))["payload"]
        out["big"] = await raw.join("realtime:big", {"config": {"broadcast": {"ack": True}}})
        ref = await raw.send(
            "realtime:big",
            "broadcast",
            {"type": "broadcast", "event": "e", "payload": {"b": "x" * 3_100_000}},
        )
        reply = await raw.next("phx_reply")
        out["too_large"] = (reply["ref"] == ref, reply["payload"])
        huge = Raw(await connect(_url(stack), max_size=None))
        with pytest.raises(ConnectionClosed) as closed:
            await huge.ws.send("x" * 5_100_000)
            await huge.next(timeout=5)
        out["frame_close"] = closed.value.rcvd.code if closed.value.rcvd else None
        ref = await raw.send("phoenix", "heartbeat", {})
        out["alive"] = (await raw.next("phx_reply"))["payload"]
        await raw.ws.close()
        return out

    out = asyncio.run(scenario())
    assert out["no_topic"]["response"] == {"reason": "TopicNameRequired: You must provide a topic name"}
    assert out["unknown_topic"]["response"] == {"reason": "unmatched topic"}
    assert out["not_a_map"]["status"] == "error"
    assert out["malformed_jwt"]["response"] == {
        "reason": "MalformedJWT: The token provided is not a valid JWT"
    }
    assert out["expired"]["response"]["reason"].startswith("InvalidJWTToken: Token has expired ")
    assert out["unjoined"] == {"status": "error", "response": {"reason": "unmatched topic"}}
    assert out["big"]["status"] == "ok"
    assert out["too_large"] == (True, {"status": "error", "response": {"reason": "payload_size_exceeded"}})
    assert out["frame_close"] == 1009  # message too big, as Realtime's endpoint closes it
    assert out["alive"] == {"status": "ok", "response": {}}
    health = httpx.get(f"http://{stack.settings.host}:{stack.settings.realtime_port}/health")
    assert health.status_code == 200


def test_an_expired_token_ends_the_channel_and_a_refreshed_one_keeps_it(stack: LocalStack) -> None:
    async def scenario() -> tuple[list[str], dict[str, Any], list[str]]:
        ending, kept = Raw(await connect(_url(stack))), Raw(await connect(_url(stack)))
        topic = f"realtime:t-{uuid.uuid4().hex[:6]}"
        assert (await ending.join(topic, {"access_token": _token(stack, 2)}))["status"] == "ok"
        assert (await kept.join(topic, {"access_token": _token(stack, 2)}))["status"] == "ok"
        await kept.send(topic, "access_token", {"access_token": _token(stack, 60)})
        system = await ending.next("system", timeout=6)
        closed = await ending.next("phx_close", timeout=2)
        with stack_db(stack) as conn:
            conn.execute(
                "select realtime.send('{\"n\": 1}'::jsonb, 'tick', %s, false)",
                (topic.removeprefix("realtime:"),),
            )
        got = await kept.next("broadcast", timeout=3)
        return [system["payload"]["status"], closed["event"]], system["payload"], [got["payload"]["event"]]

    events, system, kept = asyncio.run(scenario())
    assert events == ["error", "phx_close"]
    assert system["extension"] == "system" and system["message"].startswith("Token has expired")
    assert kept == ["tick"]


def test_the_websocket_url_opened_without_an_upgrade_answers_json(stack: LocalStack) -> None:
    s = stack.settings
    reply = httpx.get(
        f"{s.api_url}/realtime/v1/websocket", params={"apikey": s.publishable_key, "vsn": "1.0.0"}
    )
    assert reply.status_code == 426
    assert reply.headers["content-type"].startswith("application/json")
    assert "WebSocket client" in reply.json()["error"] and "websockets" not in reply.text
