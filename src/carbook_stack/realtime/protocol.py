"""The Phoenix channel wire format, as Supabase Realtime's clients speak it.

Two serializers, chosen by the ``vsn`` query parameter of the WebSocket URL:

- ``1.0.0`` (realtime-py): every frame a JSON object
  ``{"topic", "event", "payload", "ref", "join_ref"}``;
- ``2.0.0`` (supabase-js's default): a JSON array ``[join_ref, ref, topic, event,
  payload]``, and binary frames for user broadcasts: kind 3 (a client's push, with its
  refs) and kind 4 (a broadcast to a client), whose payload is raw bytes (encoding 0)
  or JSON text (encoding 1).

Nothing here does I/O: frames in, :class:`Message` out, and back.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_PAYLOAD",
    "SUPPORTED_VSN",
    "FrameError",
    "Message",
    "UserBroadcast",
    "decode",
    "encode",
]

SUPPORTED_VSN = ("1.0.0", "2.0.0")
#: Largest broadcast payload (Realtime's default ``max_payload_size_in_kb``: 3000).
MAX_PAYLOAD = 3000 * 1000
_KIND_PUSH = 3
_KIND_BROADCAST = 4
_BINARY = 0
_JSON = 1


class FrameError(ValueError):
    """A frame that is not a Phoenix message of the connection's serializer."""


@dataclass(frozen=True)
class UserBroadcast:
    """A broadcast whose user payload travels as bytes (vsn 2.0.0 binary frames)."""

    event: str
    payload: bytes
    #: The payload's encoding: raw bytes, or JSON text.
    is_json: bool
    metadata: dict[str, Any] | None = None

    def as_json_payload(self) -> dict[str, Any]:
        """The ``{"type": "broadcast", ...}`` payload a JSON frame carries (JSON payloads only)."""
        body: dict[str, Any] = {"type": "broadcast", "event": self.event, "payload": json.loads(self.payload)}
        if self.metadata:
            body["meta"] = self.metadata
        return body


@dataclass(frozen=True)
class Message:
    topic: str
    event: str
    payload: Any
    ref: str | None = None
    join_ref: str | None = None


def _ref(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise FrameError("a ref must be a string")


def decode(frame: str | bytes, vsn: str) -> Message:
    """One client frame as a message.

    Raises:
        FrameError: not a message (not JSON, a wrong shape, an unknown binary kind).
    """
    if isinstance(frame, bytes):
        if vsn != "2.0.0":
            raise FrameError("binary frames need vsn 2.0.0")
        return _decode_push(frame)
    try:
        data = json.loads(frame)
    except ValueError:
        raise FrameError("a frame must be JSON") from None
    if vsn == "2.0.0":
        if not isinstance(data, list) or len(data) != 5:
            raise FrameError("a frame must be [join_ref, ref, topic, event, payload]")
        join_ref, ref, topic, event, payload = data
    else:
        if not isinstance(data, dict):
            raise FrameError("a frame must be a JSON object")
        join_ref, ref = data.get("join_ref"), data.get("ref")
        topic, event, payload = data.get("topic"), data.get("event"), data.get("payload")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise FrameError("a frame needs a topic and an event")
    return Message(topic, event, payload, _ref(ref), _ref(join_ref))


def _decode_push(frame: bytes) -> Message:
    """A vsn 2.0.0 user broadcast push: kind, five lengths, encoding, then the fields."""
    if len(frame) < 7 or frame[0] != _KIND_PUSH:
        raise FrameError("unknown binary frame")
    sizes = frame[1:6]
    encoding = frame[6]
    offset = 7
    fields: list[str] = []
    try:
        for size in sizes:
            fields.append(frame[offset : offset + size].decode())
            offset += size
    except UnicodeDecodeError:
        raise FrameError("a binary frame's header must be text") from None
    if offset > len(frame) or encoding not in (_BINARY, _JSON):
        raise FrameError("a truncated binary frame")
    join_ref, ref, topic, event, metadata = fields
    meta: dict[str, Any] | None = None
    if metadata:
        try:
            meta = json.loads(metadata)
        except ValueError:
            raise FrameError("binary frame metadata must be JSON") from None
    body = frame[offset:]
    if encoding == _JSON:
        try:
            json.loads(body)
        except ValueError:
            raise FrameError("a JSON broadcast payload must be JSON") from None
    return Message(
        topic, "broadcast", UserBroadcast(event, body, encoding == _JSON, meta), ref or None, join_ref or None
    )


def encode(message: Message, vsn: str) -> str | bytes:
    """A message as the client's serializer expects it."""
    payload = message.payload
    if isinstance(payload, UserBroadcast):
        if vsn == "2.0.0" and (not payload.is_json or _fits_binary(message.topic, payload)):
            return _encode_broadcast(message.topic, payload)
        # A JSON object for realtime-py (raw bytes are never sent to it, see Hub), and for a
        # topic or event too long for the binary header's one-byte lengths.
        payload = payload.as_json_payload()
    if vsn == "2.0.0":
        return json.dumps([message.join_ref, message.ref, message.topic, message.event, payload])
    return json.dumps(
        {
            "topic": message.topic,
            "event": message.event,
            "payload": payload,
            "ref": message.ref,
            "join_ref": message.join_ref,
        }
    )


def _fits_binary(topic: str, b: UserBroadcast) -> bool:
    meta = json.dumps(b.metadata) if b.metadata else ""
    return max(len(topic.encode()), len(b.event.encode()), len(meta.encode())) <= 255


def _encode_broadcast(topic: str, b: UserBroadcast) -> bytes:
    topic_b, event_b = topic.encode(), b.event.encode()
    meta_b = json.dumps(b.metadata).encode() if b.metadata else b""
    header = struct.pack(
        "!BBBBB", _KIND_BROADCAST, len(topic_b), len(event_b), len(meta_b), _JSON if b.is_json else _BINARY
    )
    return header + topic_b + event_b + meta_b + b.payload
