"""Channels: who joined which topic, fan-out of broadcasts, and Presence.

A topic's private and public channels are separate rooms, as on hosted Supabase: a
message sent to the private ``room`` never reaches a public subscriber of ``room``.
Fan-out encodes a message once per serializer and writes it to every socket of the
room at once (``websockets.broadcast``), so a thousand watchers cost one encoding.

Such writes never wait for a client to read, so a client that stops reading (a frozen
tab, a stalled consumer, or one that broadcasts to itself and never reads) would grow
the service's memory by every message of its topics. ``send`` drops a connection whose
unsent bytes pass ``SLOW_CONSUMER_BYTES`` instead: it reconnects and joins again, as every
Realtime client does after a lost socket, and a listing reads its state afresh then.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.asyncio.server import broadcast

from .access import Grant, Token
from .protocol import Message, UserBroadcast, encode

__all__ = ["SLOW_CONSUMER_BYTES", "Hub", "Join", "Peer", "send"]

log = logging.getLogger("carbook.realtime")

_refs = itertools.count(1)

#: Unsent bytes a connection may hold in the service before it is dropped as too slow:
#: more than the largest frame (5 MB) with room to spare, far more than a listing ever
#: falls behind by (an availability event is about 300 bytes).
SLOW_CONSUMER_BYTES = 8 << 20


def send(sockets: Iterable[Any], data: bytes | str) -> None:
    """Write ``data`` to each socket now, then drop any that holds more than
    ``SLOW_CONSUMER_BYTES`` unsent (``sockets``: websockets' server connections). Judged
    after the write, not before the next one: the last message of a burst must not leave
    a stalled client's backlog in place until something else is sent to it."""
    targets = list(sockets)
    broadcast(targets, data)
    for socket in targets:
        transport = getattr(socket, "transport", None)
        if transport is None:
            continue
        unsent = transport.get_write_buffer_size()
        if unsent > SLOW_CONSUMER_BYTES:
            log.warning(
                "dropped a connection that is too slow: %d bytes unread (limit %d)",
                unsent,
                SLOW_CONSUMER_BYTES,
            )
            transport.abort()


class Peer(Protocol):
    """A client connection, as the hub needs it."""

    vsn: str
    socket: Any
    joins: dict[str, Join]

    def push(self, message: Message) -> None: ...

    def leave(self, join: Join, *, closed: bool = True) -> None: ...


@dataclass(eq=False)
class Join:
    """One channel joined on one connection."""

    peer: Peer
    topic: str  # "realtime:<sub_topic>"
    join_ref: str | None
    private: bool
    token: Token
    self_broadcast: bool = False
    ack: bool = False
    presence_key: str = ""
    presence_enabled: bool = False
    grant: Grant | None = None  # private channels only
    can_send: bool | None = None  # private channels: RLS insert, judged on first send
    expiry: asyncio.TimerHandle | None = None
    #: postgres_changes bindings: (id, params) as the join reply listed them.
    bindings: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    @property
    def sub_topic(self) -> str:
        return self.topic.removeprefix("realtime:")

    @property
    def room(self) -> tuple[str, bool]:
        return (self.sub_topic, self.private)

    @property
    def reads_broadcast(self) -> bool:
        return self.grant is None or self.grant.broadcast

    @property
    def reads_presence(self) -> bool:
        return self.grant is None or self.grant.presence

    def reply(self, ref: str | None, status: str, response: dict[str, Any]) -> None:
        self.peer.push(
            Message(self.topic, "phx_reply", {"status": status, "response": response}, ref, self.join_ref)
        )

    def system(self, extension: str, status: str, message: str) -> None:
        payload = {"extension": extension, "status": status, "message": message, "channel": self.sub_topic}
        self.peer.push(Message(self.topic, "system", payload, None, self.join_ref))

    def close(self) -> None:
        self.peer.push(Message(self.topic, "phx_close", {}, self.join_ref, self.join_ref))


class Hub:
    """Every join, by room; and the presences tracked in each room."""

    def __init__(self) -> None:
        self.rooms: dict[tuple[str, bool], set[Join]] = defaultdict(set)
        # room -> presence key -> phx_ref -> (join, meta)
        self.presences: dict[tuple[str, bool], dict[str, dict[str, tuple[Join, dict[str, Any]]]]] = (
            defaultdict(lambda: defaultdict(dict))
        )

    def add(self, join: Join) -> None:
        self.rooms[join.room].add(join)

    def remove(self, join: Join) -> None:
        if join.expiry is not None:
            join.expiry.cancel()
        members = self.rooms.get(join.room)
        if members is not None:
            members.discard(join)
            if not members:
                del self.rooms[join.room]
        self.untrack(join)

    def subscribers(self) -> int:
        return sum(len(m) for m in self.rooms.values())

    # Broadcast --------------------------------------------------------------------
    def broadcast(
        self, room: tuple[str, bool], payload: dict[str, Any] | UserBroadcast, sender: Join | None = None
    ) -> int:
        """A broadcast to every reader of the room (the sender too if it asked for ``self``)."""
        targets = [
            j
            for j in self.rooms.get(room, ())
            if j.reads_broadcast and (j is not sender or sender.self_broadcast)
        ]
        self._fan_out(targets, "broadcast", payload)
        return len(targets)

    def _fan_out(self, targets: Iterable[Join], event: str, payload: Any) -> None:
        by_vsn: dict[str, list[Any]] = defaultdict(list)
        topic = None
        for j in targets:
            topic = j.topic
            if isinstance(payload, UserBroadcast) and not payload.is_json and j.peer.vsn != "2.0.0":
                continue  # raw bytes have no JSON form: realtime-py's serializer cannot carry them
            by_vsn[j.peer.vsn].append(j.peer.socket)
        if topic is None:
            return
        for vsn, sockets in by_vsn.items():
            send(sockets, encode(Message(topic, event, payload), vsn))

    # Presence ---------------------------------------------------------------------
    def presence_state(self, join: Join) -> dict[str, Any]:
        state = self.presences.get(join.room, {})
        return {key: {"metas": [meta for _, meta in metas.values()]} for key, metas in state.items() if metas}

    def track(self, join: Join, payload: dict[str, Any]) -> None:
        keyed = self.presences[join.room][join.presence_key]
        leaves = [(ref, meta) for ref, (j, meta) in keyed.items() if j is join]
        ref = f"carbook-{next(_refs)}-{uuid.uuid4().hex[:8]}"
        meta = {**payload, "phx_ref": ref}
        if leaves:
            meta["phx_ref_prev"] = leaves[-1][0]
        for old, _ in leaves:
            del keyed[old]
        keyed[ref] = (join, meta)
        self._diff(
            join, {join.presence_key: [meta]}, {join.presence_key: [m for _, m in leaves]} if leaves else {}
        )

    def untrack(self, join: Join) -> None:
        state = self.presences.get(join.room)
        if not state:
            return
        keyed = state.get(join.presence_key, {})
        leaves = [meta for j, meta in keyed.values() if j is join]
        if not leaves:
            return
        for ref in [r for r, (j, _) in keyed.items() if j is join]:
            del keyed[ref]
        if not keyed:
            del state[join.presence_key]
        if not state:
            del self.presences[join.room]
        self._diff(join, {}, {join.presence_key: leaves})

    def _diff(self, join: Join, joins: dict[str, list[Any]], leaves: dict[str, list[Any]]) -> None:
        payload = {
            "joins": {k: {"metas": v} for k, v in joins.items()},
            "leaves": {k: {"metas": v} for k, v in leaves.items()},
        }
        targets = [j for j in self.rooms.get(join.room, ()) if j.presence_enabled and j.reads_presence]
        self._fan_out(targets, "presence_diff", payload)
