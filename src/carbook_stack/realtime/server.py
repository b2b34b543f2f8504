"""The Realtime service of the local stack: a WebSocket server speaking the Phoenix
channel protocol as Supabase Realtime does, behind nginx at ``/realtime/v1/websocket``.

One asyncio process: the sockets, the channels (``channels.Hub``), and a listener on
the database that hears every committed ``realtime.messages`` row (Broadcast from the
database) by ``NOTIFY``; postgres_changes come from logical decoding (``changes``). Nothing a client sends can stop it: a bad frame, a bad join or
a payload too large gets Realtime's reply and the connection (or just the message)
goes, never the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..settings import StackSettings, load_settings
from .access import AccessError, Token, authorize, can_write, check_token
from .api import start_rest
from .bindings import BindingError, binding_id, inspect, parse
from .changes import ChangeFeed, ChangesError
from .channels import Hub, Join, send
from .protocol import MAX_PAYLOAD, SUPPORTED_VSN, FrameError, Message, UserBroadcast, decode, encode

__all__ = ["MAX_FRAME", "MAX_PAYLOAD", "NOTIFY_CHANNEL", "RealtimeServer", "main"]

log = logging.getLogger("carbook.realtime")

#: Largest frame a client may send (Realtime's endpoint: 5 MB); a larger one closes the
#: connection with 1009, as Realtime's does.
MAX_FRAME = 5_000_000
#: The channel ``realtime.messages``' trigger notifies on (see bootstrap.sql).
NOTIFY_CHANNEL = "carbook_realtime"
#: Realtime checks a token again at most this often, and at its expiry.
TOKEN_RECHECK = 300.0
REPLAY_HARD_LIMIT = 25


def _json_response(status: int, body: dict[str, Any]) -> Response:
    headers = Headers({"Content-Type": "application/json"})
    return Response(status, http.HTTPStatus(status).phrase, headers, json.dumps(body).encode())


class Peer:
    """One client connection: its serializer, its API key's token, its channels."""

    def __init__(
        self, server: RealtimeServer, socket: ServerConnection, vsn: str, tenant_token: Token
    ) -> None:
        self.server = server
        self.socket = socket
        self.vsn = vsn
        self.tenant_token = tenant_token
        self.joins: dict[str, Join] = {}

    def push(self, message: Message) -> None:
        # Written at once, like every fan-out: what one client is sent keeps its order.
        send([self.socket], encode(message, self.vsn))

    def reply(self, m: Message, status: str, response: dict[str, Any]) -> None:
        self.push(Message(m.topic, "phx_reply", {"status": status, "response": response}, m.ref, m.join_ref))

    async def serve(self) -> None:
        try:
            async for frame in self.socket:
                try:
                    message = decode(frame, self.vsn)
                except FrameError as exc:
                    log.info("bad frame: %s", exc)
                    continue
                try:
                    await self.handle(message)
                except Exception:  # one message's failure is never the connection's, or the service's
                    log.exception("error handling %s on %s", message.event, message.topic)
                    join = self.joins.get(message.topic)
                    if join is not None and message.event == "phx_join":
                        self.leave(join)
                    if message.ref is not None:
                        self.reply(
                            message, "error", {"reason": "UnknownErrorOnChannel: Unknown Error on Channel"}
                        )
        except ConnectionClosed:
            pass
        finally:
            for join in list(self.joins.values()):
                self.server.hub.remove(join)
            self.joins.clear()

    async def handle(self, m: Message) -> None:
        if m.topic == "phoenix":
            if m.event == "heartbeat":
                self.reply(m, "ok", {})
            return
        if m.event == "phx_join":
            await self.server.join(self, m)
            return
        join = self.joins.get(m.topic)
        if join is None:
            # Phoenix's answer to a message for a channel this socket has not joined.
            self.reply(m, "error", {"reason": "unmatched topic"})
            return
        if m.event == "phx_leave":
            self.reply(m, "ok", {})
            self.leave(join)
        elif m.event == "broadcast":
            await self.server.client_broadcast(join, m)
        elif m.event == "presence":
            await self.server.presence(join, m)
        elif m.event == "access_token":
            await self.server.refresh_token(join, m)
        # Anything else is ignored, as Realtime ignores it.

    def leave(self, join: Join, *, closed: bool = True) -> None:
        self.server.hub.remove(join)
        if self.joins.get(join.topic) is join:
            del self.joins[join.topic]
        if closed:
            join.close()


class RealtimeServer:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.keys = settings.keys()
        self.hub = Hub()
        self.pool: AsyncConnectionPool[Any] | None = None
        self.changes: ChangeFeed | None = None
        self.key_jwts = settings.key_jwts()

    # The handshake ------------------------------------------------------------------
    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path in ("/health", "/api/health"):
            return _json_response(200, {"realtime": "ok", "subscribers": self.hub.subscribers()})
        if not url.path.endswith("/websocket"):
            return _json_response(404, {"error": "Not found"})
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            # websockets' own answer is plain text about its library; a page reads JSON.
            return _json_response(426, {"error": "Upgrade Required: open this URL with a WebSocket client"})
        query = parse_qs(url.query)
        vsn = query.get("vsn", ["1.0.0"])[0]
        if vsn not in SUPPORTED_VSN:
            return _json_response(400, {"error": f"Unsupported serializer version {vsn}"})
        apikey = query.get("apikey", [""])[0] or request.headers.get("apikey")
        if not apikey:
            return _json_response(401, {"error": "API key is missing"})
        try:
            token = check_token(self.key_jwts.get(apikey, apikey), self.keys)
        except AccessError as exc:
            return _json_response(401, {"error": exc.message})
        connection.carbook = (vsn, token)  # type: ignore[attr-defined]
        return None

    async def handler(self, socket: ServerConnection) -> None:
        vsn, token = socket.carbook  # type: ignore[attr-defined]
        await Peer(self, socket, vsn, token).serve()

    # Joins ------------------------------------------------------------------------
    async def join(self, peer: Peer, m: Message) -> None:
        def refuse(reason: str) -> None:
            peer.reply(m, "error", {"reason": reason})

        if not m.topic.startswith("realtime:"):
            return refuse("unmatched topic")
        if m.topic == "realtime:":
            return refuse("TopicNameRequired: You must provide a topic name")
        params = m.payload if isinstance(m.payload, dict) else {}
        if not isinstance(m.payload, dict):
            return refuse("InvalidJoinPayload: the join payload must be a JSON object")
        config = _section(params, "config")
        broadcast_cfg = _section(config, "broadcast")
        presence_cfg = _section(config, "presence")
        private = _flag(config.get("private"))
        raw = params.get("access_token") or params.get("user_token")
        try:
            token = peer.tenant_token if not raw or (isinstance(raw, str) and raw.startswith("sb_")) else None
            token = token or check_token(raw, self.keys)
            join = Join(
                peer=peer,
                topic=m.topic,
                join_ref=m.join_ref or m.ref,
                private=private,
                token=token,
                self_broadcast=_flag(broadcast_cfg.get("self")),
                ack=_flag(broadcast_cfg.get("ack")),
                presence_key=str(presence_cfg.get("key") or "") or f"presence-{id(peer)}-{m.ref}",
                presence_enabled=_flag(presence_cfg.get("enabled")),
            )
            if private:
                join.grant = await authorize(self._pool(), token, join.sub_topic)
                if not (join.grant.broadcast or join.grant.presence):
                    raise AccessError(
                        "Unauthorized",
                        f"You do not have permissions to read from this Channel topic: {join.sub_topic}",
                    )
            replay = broadcast_cfg.get("replay")
            if replay is not None and not private:
                raise AccessError("UnableToReplayMessages", "Replay is not allowed for public channels")
            bindings = self.bindings(config.get("postgres_changes"))
        except AccessError as exc:
            return refuse(str(exc))
        join.bindings = bindings
        old = peer.joins.get(m.topic)
        if old is not None:  # a rejoin: Phoenix closes the channel it replaces
            peer.leave(old)
        peer.joins[m.topic] = join
        self.hub.add(join)
        self._watch_expiry(join)
        join.reply(m.ref, "ok", {"postgres_changes": [{**p, "id": i} for i, p in bindings]})
        if join.presence_enabled and join.reads_presence:
            join.peer.push(
                Message(join.topic, "presence_state", self.hub.presence_state(join), None, join.join_ref)
            )
        if isinstance(replay, dict):
            await self._replay(join, replay)
        if bindings:
            await self._subscribe_changes(join)

    def bindings(self, raw: object) -> list[tuple[int, dict[str, Any]]]:
        """A join's postgres_changes bindings with their ids, as the join reply lists them."""
        if not isinstance(raw, list):
            return []
        found = []
        for params in raw:
            if params is None:
                continue
            if not isinstance(params, dict):
                raise AccessError("UnknownErrorOnChannel", f"expected a map, got: {inspect(params)}")
            found.append((binding_id(params), params))
        return found

    async def _subscribe_changes(self, join: Join) -> None:
        """After the join's reply, as Realtime subscribes: a ``system`` message says whether
        the bindings are delivered from now on, or why not (and the join stays)."""
        assert self.changes is not None
        try:
            parsed = [parse(params, i) for i, params in join.bindings]
            await self.changes.subscribe(join, parsed)
        except (BindingError, ChangesError) as exc:
            return join.system("postgres_changes", "error", str(exc))
        if join.peer.joins.get(join.topic) is join:
            join.system("postgres_changes", "ok", "Subscribed to PostgreSQL")

    async def _replay(self, join: Join, replay: dict[str, Any]) -> None:
        since, limit = replay.get("since", 0), replay.get("limit", 10)
        if not isinstance(since, int) or not isinstance(limit, int) or not join.reads_broadcast:
            return
        limit = max(min(limit, REPLAY_HARD_LIMIT), 1)
        async with self._pool().connection() as conn:
            cur = await conn.execute(
                """select id::text, event, payload from realtime.messages
                    where topic = %s and private and extension = 'broadcast'
                      and inserted_at >= (to_timestamp(%s / 1000.0) at time zone 'utc')
                    order by inserted_at desc limit %s""",
                (join.sub_topic, since, limit),
            )
            rows = await cur.fetchall()
        for mid, event, payload in reversed(rows):
            body = {
                "type": "broadcast",
                "event": event,
                "payload": payload,
                "meta": {"replayed": True, "id": mid},
            }
            join.peer.push(Message(join.topic, "broadcast", body, None, None))

    # Tokens -----------------------------------------------------------------------
    def _watch_expiry(self, join: Join) -> None:
        if join.expiry is not None:
            join.expiry.cancel()
        delay = max(0.0, min(TOKEN_RECHECK, join.token.expires_in))
        join.expiry = asyncio.get_running_loop().call_later(delay, self._recheck, join)

    def _recheck(self, join: Join) -> None:
        try:
            join.token = check_token(join.token.raw, self.keys)
        except AccessError as exc:
            return self._shutdown(join, exc.message)
        self._watch_expiry(join)

    def _shutdown(self, join: Join, message: str) -> None:
        """Realtime's shutdown of a channel: a system error saying why, then phx_close."""
        if join.peer.joins.get(join.topic) is not join:
            return
        join.system("system", "error", message)
        join.peer.leave(join)

    async def refresh_token(self, join: Join, m: Message) -> None:
        raw = m.payload.get("access_token") if isinstance(m.payload, dict) else None
        if not isinstance(raw, str) or raw.startswith("sb_") or raw == join.token.raw:
            return
        try:
            token = check_token(raw, self.keys)
            if join.private:
                grant = await authorize(self._pool(), token, join.sub_topic)
                previous = join.grant
                if previous is not None and (
                    (previous.broadcast and not grant.broadcast) or (previous.presence and not grant.presence)
                ):
                    raise AccessError(
                        "Unauthorized",
                        f"You no longer have permission to read from this Channel topic: {join.sub_topic}",
                    )
                join.grant, join.can_send = grant, None
        except AccessError as exc:
            return self._shutdown(join, exc.message)
        join.token = token
        self._watch_expiry(join)

    # Broadcast and Presence ------------------------------------------------------------
    async def client_broadcast(self, join: Join, m: Message) -> None:
        payload = m.payload
        if isinstance(payload, UserBroadcast):
            size = len(payload.payload)
        elif isinstance(payload, dict) and isinstance(payload.get("event"), str):
            size = len(json.dumps(payload.get("payload")))
        else:
            return
        if join.private:
            if join.can_send is None:
                join.can_send = await can_write(self._pool(), join.token, join.sub_topic, "broadcast")
            if not join.can_send:
                return  # Realtime drops what RLS does not let a subscriber send
        if size > MAX_PAYLOAD:
            if join.ack:
                join.reply(m.ref, "error", {"reason": "payload_size_exceeded"})
            return
        if isinstance(payload, dict):
            payload = {"type": "broadcast", "event": payload["event"], "payload": payload.get("payload")}
        self.hub.broadcast(join.room, payload, sender=join)
        if join.ack:
            join.reply(m.ref, "ok", {})

    async def presence(self, join: Join, m: Message) -> None:
        body = m.payload if isinstance(m.payload, dict) else {}
        event = body.get("event")
        if event == "untrack":
            self.hub.untrack(join)
            return join.reply(m.ref, "ok", {})
        if event != "track":
            return join.reply(m.ref, "error", {"reason": "Presence event must be track or untrack"})
        payload = body.get("payload", {})
        if not isinstance(payload, dict):
            return join.reply(m.ref, "error", {"reason": "Presence track payload must be a map"})
        if len(json.dumps(payload)) > MAX_PAYLOAD:
            return self._shutdown(join, "Track message size exceeded")
        if join.private and not await can_write(self._pool(), join.token, join.sub_topic, "presence"):
            return join.reply(
                m.ref, "error", {"reason": "Unauthorized: You do not have permissions to track presence"}
            )
        if not join.presence_enabled:
            # A track enables presence on a channel joined without it, as Realtime does.
            join.presence_enabled = True
            if join.reads_presence:
                join.peer.push(
                    Message(join.topic, "presence_state", self.hub.presence_state(join), None, join.join_ref)
                )
        self.hub.track(join, payload)
        join.reply(m.ref, "ok", {})

    # The database -----------------------------------------------------------------
    def _pool(self) -> AsyncConnectionPool[Any]:
        assert self.pool is not None
        return self.pool

    def deliver(self, row: dict[str, Any]) -> None:
        """A committed ``realtime.messages`` broadcast to its room's readers."""
        body = {
            "type": "broadcast",
            "event": row.get("event"),
            "payload": row.get("payload"),
            "meta": {"id": row.get("id")},
        }
        self.hub.broadcast((str(row.get("topic")), bool(row.get("private"))), body)

    async def listen(self) -> None:
        """Hear every committed message, in commit order, for as long as the service runs;
        the database going away is waited out with a backoff."""
        delay = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.settings.db_url, autocommit=True
                ) as conn:
                    await conn.execute(f"listen {NOTIFY_CHANNEL}")
                    delay = 0.2
                    async for note in conn.notifies():
                        await self._on_notify(note.payload)
            except psycopg.Error as exc:
                log.warning("database listener: %s; retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _on_notify(self, raw: str) -> None:
        try:
            row = json.loads(raw)
        except ValueError:
            return
        if row.get("fetch"):
            # Too large for a notification (8000 bytes): read it from the table.
            async with self._pool().connection() as conn:
                cur = await conn.execute(
                    "select id::text, topic, event, private, payload from realtime.messages where id = %s",
                    (row.get("id"),),
                )
                found = await cur.fetchone()
            if found is None:
                return
            row = dict(zip(("id", "topic", "event", "private", "payload"), found, strict=True))
        self.deliver(row)

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        async with AsyncConnectionPool(
            s.db_url,
            min_size=1,
            max_size=5,
            open=False,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,
            timeout=10,
        ) as pool:
            self.pool = pool
            self.changes = ChangeFeed(s.db_url, pool, lambda j: j.peer.joins.get(j.topic) is j)
            await self.changes.cleanup()
            with contextlib.suppress(psycopg.Error):  # as Realtime: messages are kept 72 hours
                async with pool.connection() as conn:
                    await conn.execute(
                        "delete from realtime.messages where inserted_at < timezone('utc', now()) - interval '72 hours'"
                    )
            listener = asyncio.create_task(self.listen())
            rest = await start_rest(self, stop)
            async with serve(
                self.handler,
                s.host,
                s.realtime_port,
                process_request=self.process_request,
                max_size=MAX_FRAME,
                ping_interval=None,  # the clients' heartbeats keep the connection; Phoenix pings nothing
                compression=None,
            ):
                await stop.wait()
            if rest is not None:
                await rest
            await self.changes.close()
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


def _section(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """A section of the join payload; one that is not a map counts as empty, as Realtime
    logs an invalid join payload and goes on with its defaults."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _flag(value: object) -> bool:
    """Realtime's flexible boolean: true, "true", 1."""
    return value is True or value == 1 or (isinstance(value, str) and value.lower() == "true")


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        sys.exit("usage: python -m carbook_stack.realtime STACK_JSON")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_settings(Path(args[0]))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await RealtimeServer(settings).run(stop)

    started = time.monotonic()
    asyncio.run(run())
    log.info("stopped after %.1f s", time.monotonic() - started)
