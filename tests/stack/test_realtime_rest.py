"""Realtime's REST broadcast on the local stack (``/realtime/v1/api/broadcast``, batch and
single), through nginx, sent by realtime-py's ``http_send`` and by hand, heard by
subscribers on the socket."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from realtime import AsyncRealtimeClient
from realtime.exceptions import RealtimeHTTPError
from websockets.asyncio.client import connect

from carbook_stack.manager import LocalStack

from ..helpers import Raw, stack_db

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

AVAILABILITY = "cars:availability"


def _ws(stack: LocalStack, vsn: str = "1.0.0") -> str:
    s = stack.settings
    return f"ws://{s.host}:{s.api_port}/realtime/v1/websocket?apikey={s.publishable_key}&vsn={vsn}"


def _post(
    stack: LocalStack, path: str, body: Any = None, *, key: str | None = None, **kw: Any
) -> httpx.Response:
    s = stack.settings
    headers = {"apikey": key or s.publishable_key, **kw.pop("headers", {})}
    if body is not None:
        kw["content"] = body if isinstance(body, bytes | str) else json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    return httpx.post(f"{s.api_url}/realtime/v1/api/broadcast{path}", headers=headers, timeout=10, **kw)


async def _quiet(listener: Raw, timeout: float = 0.6) -> list[dict[str, Any]]:
    """Every broadcast the listener hears until it goes quiet."""
    heard: list[dict[str, Any]] = []
    with pytest.raises(TimeoutError):
        while True:
            heard.append((await listener.next("broadcast", timeout=timeout))["payload"])
    return heard


def _stored(stack: LocalStack) -> int:
    with stack_db(stack) as conn:
        row = conn.execute("select count(*) from realtime.messages").fetchone()
        assert row is not None
        return int(row[0])


def test_realtime_py_http_send_reaches_subscribers_and_a_private_send_without_a_policy_is_403(
    stack: LocalStack,
) -> None:
    async def scenario() -> tuple[list[Any], str, list[dict[str, Any]]]:
        url = stack.settings.api_url + "/realtime/v1"
        listener_client = AsyncRealtimeClient(url, stack.settings.publishable_key)
        sender = AsyncRealtimeClient(url, stack.settings.publishable_key)
        room = f"room/{uuid.uuid4().hex[:8]}"  # a slash travels encoded in the path
        heard: list[Any] = []
        channel = listener_client.channel(room)
        channel.on_broadcast("move", heard.append)
        await channel.subscribe()
        for _ in range(50):
            if channel.is_joined:
                break
            await asyncio.sleep(0.05)
        await sender.channel(room).http_send("move", {"x": 1})  # no socket: REST
        for _ in range(50):
            if heard:
                break
            await asyncio.sleep(0.05)
        watcher = Raw(await connect(_ws(stack)))
        assert (await watcher.join(f"realtime:{AVAILABILITY}", {"config": {"private": True}}))[
            "status"
        ] == "ok"
        with pytest.raises(RealtimeHTTPError) as refused:
            await sender.channel(AVAILABILITY, {"config": {"private": True}}).http_send(
                "booked", {"id": "fake"}
            )
        faked = await _quiet(watcher)
        await watcher.ws.close()
        await listener_client.close()
        await sender.close()
        return heard, str(refused.value), faked

    heard, refused, faked = asyncio.run(scenario())
    assert [m["payload"] for m in heard] == [{"x": 1}]
    assert "Unauthorized" in refused
    assert faked == []


def test_the_batch_delivers_public_messages_and_drops_private_ones_the_caller_may_not_send(
    stack: LocalStack,
) -> None:
    room = f"room-{uuid.uuid4().hex[:8]}"
    before = _stored(stack)

    async def scenario() -> tuple[list[int], list[dict[str, Any]], list[dict[str, Any]]]:
        public = Raw(await connect(_ws(stack)))
        private = Raw(await connect(_ws(stack)))
        assert (await public.join(f"realtime:{room}", {}))["status"] == "ok"
        assert (await private.join(f"realtime:{AVAILABILITY}", {"config": {"private": True}}))[
            "status"
        ] == "ok"
        msg_id = str(uuid.uuid4())
        anon = await asyncio.to_thread(
            _post,
            stack,
            "",
            {
                "messages": [
                    {"topic": room, "event": "a", "payload": {"n": 1}},
                    {"topic": room, "event": "b", "payload": {"n": 2}, "id": msg_id},
                    {"topic": AVAILABILITY, "event": "booked", "payload": {"id": "fake"}, "private": True},
                ]
            },
        )
        # The secret key is the service role, which RLS lets write anywhere (as on hosted Supabase).
        service = await asyncio.to_thread(
            _post,
            stack,
            "",
            {
                "messages": [
                    {"topic": AVAILABILITY, "event": "notice", "payload": {"n": 3}, "private": "true"}
                ]
            },
            key=stack.settings.secret_key,
        )
        heard_public, heard_private = await _quiet(public), await _quiet(private)
        for c in (public, private):
            await c.ws.close()
        assert anon.content == b"" and service.content == b""
        return [anon.status_code, service.status_code], heard_public, heard_private

    statuses, heard_public, heard_private = asyncio.run(scenario())
    assert statuses == [202, 202]
    assert heard_public[0] == {"type": "broadcast", "event": "a", "payload": {"n": 1}}
    assert heard_public[1]["event"] == "b" and set(heard_public[1]["meta"]) == {"id"}
    assert len(heard_public) == 2
    assert heard_private == [{"type": "broadcast", "event": "notice", "payload": {"n": 3}}]
    assert _stored(stack) == before  # delivered in memory, never stored


def test_a_binary_http_send_reaches_supabase_js_serializer_as_a_binary_frame(stack: LocalStack) -> None:
    room = f"bin-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[int, bytes]:
        async with connect(_ws(stack, "2.0.0")) as ws:
            await ws.send(json.dumps(["1", "1", f"realtime:{room}", "phx_join", {"config": {}}]))
            assert json.loads(await ws.recv())[4]["status"] == "ok"
            sent = await asyncio.to_thread(
                _post,
                stack,
                f"/{room}/events/blob",
                b"\x00\x01\xffbytes",
                headers={"Content-Type": "application/octet-stream"},
            )
            frame = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(frame, bytes)
            return sent.status_code, frame

    status, frame = asyncio.run(scenario())
    assert status == 202
    assert frame[0] == 4 and frame.endswith(b"\x00\x01\xffbytes")  # kind 4: a broadcast to a client
    assert f"realtime:{room}".encode() in frame and b"blob" in frame


BAD_BATCHES = [
    ("not JSON", b"{not json", 400, {"message": "Bad Request: the body is not valid JSON"}),
    (
        "nested too deep",
        b"[" * 100_000 + b"]" * 100_000,
        400,
        {"message": "Bad Request: the body is not valid JSON"},
    ),
    ("no messages", {}, 422, {"errors": {"messages": ["can't be blank"]}}),
    ("empty list", {"messages": []}, 422, {"errors": {"messages": ["can't be blank"]}}),
    ("messages not a list", {"messages": {"topic": "t"}}, 422, {"errors": {"messages": ["is invalid"]}}),
    (
        "a message without topic or event",
        {"messages": [{"topic": "t", "event": "e", "payload": {}}, {"payload": {}}]},
        422,
        {"errors": {"messages": [{}, {"topic": ["can't be blank"], "event": ["can't be blank"]}]}},
    ),
    (
        "payload not a map, private not a boolean, a bad id",
        {"messages": [{"topic": "t", "event": "e", "payload": [1], "private": "maybe", "id": "x"}]},
        422,
        {
            "errors": {
                "messages": [{"payload": ["is invalid"], "private": ["is invalid"], "id": ["is invalid"]}]
            }
        },
    ),
    (
        "a message not a map",
        {"messages": ["hello"]},
        422,
        {"errors": {"messages": [{"message": ["is invalid"]}]}},
    ),
]


@pytest.mark.parametrize(("case", "body", "status", "reply"), BAD_BATCHES, ids=[c[0] for c in BAD_BATCHES])
def test_bad_batches_get_realtimes_errors_and_send_nothing(
    stack: LocalStack, case: str, body: Any, status: int, reply: dict[str, Any]
) -> None:
    async def scenario() -> tuple[httpx.Response, list[dict[str, Any]]]:
        listener = Raw(await connect(_ws(stack)))
        assert (await listener.join("realtime:t", {}))["status"] == "ok"
        answer = await asyncio.to_thread(_post, stack, "", body)
        heard = await _quiet(listener, 0.4)
        await listener.ws.close()
        return answer, heard

    answer, heard = asyncio.run(scenario())
    assert (answer.status_code, answer.json()) == (status, reply)
    assert heard == []


def test_wrong_callers_types_and_sizes_are_refused_in_one_clear_line(stack: LocalStack) -> None:
    s = stack.settings
    message = {"messages": [{"topic": "t", "event": "e", "payload": {}}]}
    bad_token = _post(stack, "", message, headers={"Authorization": "Bearer not-a-token"})
    assert (bad_token.status_code, bad_token.json()) == (401, {"message": "Unauthorized"})
    no_key = httpx.post(f"{s.api_url}/realtime/v1/api/broadcast", json=message, timeout=10)
    assert no_key.status_code == 401 and "apikey" in no_key.text.lower()
    text = _post(stack, "/t/events/e", "hello", headers={"Content-Type": "text/plain"})
    assert (text.status_code, text.json()) == (
        415,
        {"error": "Unsupported Media Type. Use application/json or application/octet-stream"},
    )
    big = _post(stack, "/t/events/e", b"x" * 3_050_000, headers={"Content-Type": "application/octet-stream"})
    assert (big.status_code, big.json()) == (
        422,
        {"errors": {"payload": ["Payload size exceeds tenant limit"]}},
    )
    huge = _post(stack, "", b"x" * 3_300_000)
    assert huge.status_code == 413 and huge.json()["message"].startswith("Payload too large")
    assert huge.headers["access-control-allow-origin"] == "*"
    wrong_method = httpx.get(f"{s.api_url}/realtime/v1/api/broadcast", headers={"apikey": s.publishable_key})
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"message": "Method Not Allowed"})
