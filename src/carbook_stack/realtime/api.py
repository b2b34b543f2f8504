"""Realtime's REST broadcast, as the Realtime service serves it (on its own internal port,
behind nginx at ``/realtime/v1/api/…``): a message sent over HTTP, without a socket, reaches every subscriber
of its topic like a client's broadcast.

- ``POST /realtime/v1/api/broadcast`` ``{"messages": [{"topic", "event", "payload", "private"?, "id"?}]}``
  (supabase-js's ``channel.send()`` on a channel not joined): 202 with an empty body;
  a private message goes out only if RLS on ``realtime.messages`` lets the caller write
  to its topic, else it is dropped and the answer is still 202, as Realtime does.
- ``POST /realtime/v1/api/broadcast/{topic}/events/{event}[?private=true]``, the body the payload,
  JSON or ``application/octet-stream`` (supabase-js's ``httpSend()``, realtime-py's
  ``http_send()``): 202; a private message the caller may not send is a 403.

Errors are Realtime's: 401 ``{"message": "Unauthorized"}`` for a missing or bad token,
422 ``{"errors": {…}}`` field by field (Ecto's changeset shape), 415 for another body type.
The messages are delivered in memory, never stored, as on hosted Supabase.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .access import AccessError, Token, can_write, check_token
from .protocol import MAX_PAYLOAD, UserBroadcast

if TYPE_CHECKING:
    from .server import RealtimeServer

__all__ = ["MAX_BODY", "rest_app", "start_rest"]

#: Largest body read (Realtime's payload limit, 3,000 kB, and the envelope around it);
#: nginx stops a larger one first.
MAX_BODY = 3_100_000
_JSON_TYPES = ("application/json", "application/octet-stream")
#: Where nginx sends the REST broadcast, the request's path unchanged.
PREFIX = "/realtime/v1"
_BEARER = re.compile(r"^bearer\s+(\S+)\s*$", re.IGNORECASE)


def _unauthorized() -> JSONResponse:
    return JSONResponse({"message": "Unauthorized"}, status_code=401)


def _invalid(errors: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code=422)


class _Refused(Exception):
    """A request answered before anything is sent: its reply."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _json(body: bytes) -> Any:
    """The body as JSON (an empty one is ``{}``, as Phoenix's parser leaves it).

    Raises:
        _Refused: a 400 for a body that is not JSON (or nests deeper than Python reads).
    """
    try:
        return json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError):
        raise _Refused(
            JSONResponse({"message": "Bad Request: the body is not valid JSON"}, status_code=400)
        ) from None


def _bool(value: object) -> bool | None:
    """Ecto's boolean cast: true/false and their strings; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return None


def _check_message(raw: object) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """One message of a batch, cast as Realtime's changeset does: the message and its errors."""
    if not isinstance(raw, dict):
        return {}, {"message": ["is invalid"]}
    errors: dict[str, list[str]] = {}
    message: dict[str, Any] = {}
    for name in ("topic", "event"):
        value = raw.get(name)
        if value is None or value == "":
            errors[name] = ["can't be blank"]
        elif not isinstance(value, str):
            errors[name] = ["is invalid"]
        else:
            message[name] = value
    payload = raw.get("payload")
    if payload is None:
        errors["payload"] = ["can't be blank"]
    elif not isinstance(payload, dict):
        errors["payload"] = ["is invalid"]
    else:
        message["payload"] = payload
    private = False if raw.get("private") is None else _bool(raw["private"])
    if private is None:
        errors["private"] = ["is invalid"]
    message["private"] = bool(private)
    if raw.get("id") is not None:
        try:
            message["id"] = str(uuid.UUID(str(raw["id"])))
        except ValueError:
            errors["id"] = ["is invalid"]
    return message, errors


class RestBroadcast:
    def __init__(self, server: RealtimeServer) -> None:
        self.server = server

    def token(self, request: Request) -> Token | None:
        """The caller: the bearer token, else the API key (new keys as their JWTs)."""
        match = _BEARER.match(request.headers.get("authorization", ""))
        raw = match.group(1) if match else request.headers.get("apikey", "")
        if not raw:
            return None
        try:
            return check_token(self.server.key_jwts.get(raw, raw), self.server.keys)
        except AccessError:
            return None

    async def may_send(self, token: Token, topic: str) -> bool:
        # A NUL cannot reach the database, so no policy could allow it.
        if "\x00" in topic or self.server.pool is None:
            return False
        return await can_write(self.server.pool, token, topic, "broadcast")

    async def batch(self, request: Request, token: Token) -> Response:
        params = _json(await request.body())
        raw = params.get("messages") if isinstance(params, dict) else None
        if raw is None or raw == []:
            return _invalid({"messages": ["can't be blank"]})
        if not isinstance(raw, list):
            return _invalid({"messages": ["is invalid"]})
        checked = [_check_message(m) for m in raw]
        if any(errors for _, errors in checked):
            return _invalid({"messages": [errors for _, errors in checked]})
        allowed: dict[str, bool] = {}
        for message, _ in checked:
            topic = message["topic"]
            if message["private"]:
                if topic not in allowed:
                    allowed[topic] = await self.may_send(token, topic)
                if not allowed[topic]:
                    continue  # Realtime drops what the caller may not send, and says 202
            body_out: dict[str, Any] = {
                "type": "broadcast",
                "event": message["event"],
                "payload": message["payload"],
            }
            if "id" in message:
                body_out["meta"] = {"id": message["id"]}
            self.server.hub.broadcast((topic, message["private"]), body_out)
        return Response(status_code=202)

    async def single(self, request: Request, token: Token) -> Response:
        topic, event = request.path_params["topic"], request.path_params["event"]
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type not in _JSON_TYPES:
            return JSONResponse(
                {"error": "Unsupported Media Type. Use application/json or application/octet-stream"},
                status_code=415,
            )
        body = await request.body()
        if len(body) > MAX_PAYLOAD:
            return _invalid({"payload": ["Payload size exceeds tenant limit"]})
        private = _bool(request.query_params.get("private")) is True
        payload: dict[str, Any] | UserBroadcast
        if content_type == "application/octet-stream":
            payload = UserBroadcast(event, body, is_json=False)
        else:
            payload = {"type": "broadcast", "event": event, "payload": _json(body)}
        if private and not await self.may_send(token, topic):
            return JSONResponse({"message": "Unauthorized"}, status_code=403)
        self.server.hub.broadcast((topic, private), payload)
        return Response(status_code=202)


def rest_app(server: RealtimeServer) -> Starlette:
    """The REST routes over ``server``'s channels."""
    rest = RestBroadcast(server)

    def route(
        handler: Callable[[Request, Token], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """What both endpoints check first: the body's size, then the caller."""

        async def run(request: Request) -> Response:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_BODY:
                return JSONResponse({"message": "Payload too large"}, status_code=413)
            token = rest.token(request)
            if token is None:
                return _unauthorized()
            try:
                return await handler(request, token)
            except _Refused as refused:
                return refused.response

        return run

    async def not_routed(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return JSONResponse(
            {"message": "Method Not Allowed" if status == 405 else "Not found"}, status_code=status
        )

    return Starlette(
        exception_handlers={404: not_routed, 405: not_routed},
        routes=[
            Route(f"{PREFIX}/api/broadcast", route(rest.batch), methods=["POST"]),
            # A topic may hold slashes (sent encoded; read decoded, as Phoenix's router does).
            Route(
                f"{PREFIX}/api/broadcast/{{topic:path}}/events/{{event:str}}",
                route(rest.single),
                methods=["POST"],
            ),
        ],
    )


class _Server(uvicorn.Server):
    # The Realtime process handles SIGTERM itself (it ends the WebSocket server too).
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def start_rest(server: RealtimeServer, stop: asyncio.Event) -> asyncio.Task[None] | None:
    """Serve the REST broadcast on the stack's ``realtime_api_port``: returns once it
    listens (before the WebSocket does, so a healthy service serves both), with the task
    that ends after ``stop``. A port that cannot be bound ends the process."""
    s = server.settings
    if not s.realtime_api_port:
        return None
    config = uvicorn.Config(
        rest_app(server),
        host=s.host,
        port=s.realtime_api_port,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    http = _Server(config)
    serving = asyncio.create_task(http.serve())
    while not http.started and not serving.done():
        await asyncio.sleep(0.01)
    if serving.done():
        serving.result()  # raises what stopped it
        raise SystemExit(f"the REST broadcast could not listen on port {s.realtime_api_port}")

    async def until_stopped() -> None:
        await stop.wait()
        http.should_exit = True
        await serving

    return asyncio.create_task(until_stopped())
