"""Live availability: the events ``cars.watch()`` yields and the bookkeeping that gives
a consistent start and no duplicate across a reconnect. No I/O here: both clients
(``_async/watch.py`` and its generated twin) share it.

The database sends every change of what a listing shows to the private Realtime topic
``cars:availability`` (migration ``live_availability``), each with the car's
``version`` (its ``updated_at``, which follows commit order per car). A watcher
subscribes first, then reads the listing, then keeps only the changes newer than what
it already showed; on a reconnect it asks Realtime to replay what it missed (private
channels keep their messages) and drops by message id what it had already seen.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .models import BookingStatus, Car
from .money import Money

__all__ = ["AVAILABILITY_TOPIC", "AvailabilityEvent", "AvailabilityKind", "Listing"]

AVAILABILITY_TOPIC = "cars:availability"

AvailabilityKind = Literal[
    "listed", "booked", "released", "published", "unpublished", "price_changed", "unlisted"
]
#: What takes a car out of the listing.
LEAVING: frozenset[str] = frozenset({"booked", "unpublished", "unlisted"})
#: Replay asks this far back from the last change seen: a change's version is taken while
#: its row is locked, and its transaction may commit a little after a later version.
REPLAY_MARGIN = timedelta(seconds=60)
#: Realtime replays at most this many messages; a full replay may have left some out.
REPLAY_LIMIT = 25


class AvailabilityEvent(BaseModel):
    """One change of the public listing, or (``kind="listed"``) a car in it at the start.

    Carries what any visitor may know: never who booked.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    kind: AvailabilityKind
    car_id: uuid.UUID = Field(alias="id")
    #: Whether the car is in the listing (published and available) after this change.
    listed: bool
    status: BookingStatus
    price_in_paise: int
    currency: str
    #: The car's version (its ``updated_at``): later changes of a car have later versions.
    version: datetime
    #: The whole row, for cars in the listing at the start (``listed``) or after a resync.
    car: Car | None = None

    @property
    def price(self) -> Money:
        return Money.from_minor(self.price_in_paise, self.currency)

    def to_json(self) -> str:
        """One line of JSON (``--json`` prints these)."""
        body = self.model_dump(mode="json", by_alias=False, exclude={"car"})
        if self.car is not None:
            body["car"] = {k: v for k, v in self.car.model_dump(mode="json").items() if k != "booked_by"}
        return json.dumps(body)


def _listed(car: Car) -> AvailabilityEvent:
    return AvailabilityEvent(
        kind="listed",
        car_id=car.id,
        listed=True,
        status=car.booking_status,
        price_in_paise=car.price_in_paise,
        currency=car.currency,
        version=car.updated_at,
        car=car,
    )


class Listing:
    """What a watcher has shown: each car's last version, what is listed, the ids of the
    messages already seen (a bounded window)."""

    def __init__(self) -> None:
        self.versions: dict[uuid.UUID, datetime] = {}
        self.listed: dict[uuid.UUID, AvailabilityEvent] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.last_version: datetime | None = None
        #: When the first listing was read: a change of a car it did not show, older than
        #: this, is one the listing already reflects (a replay brings such changes back).
        self.horizon: datetime | None = None

    def start(self, cars: Iterable[Car], read_at: datetime) -> list[AvailabilityEvent]:
        """The listing read after subscribing (``read_at``: when the read began), as
        ``listed`` events."""
        self.horizon = read_at
        return [self._show(_listed(car)) for car in cars]

    def resync(self, cars: Iterable[Car]) -> list[AvailabilityEvent]:
        """After a replay that may have left changes out: the difference between what was
        shown and the listing now, as events."""
        now = {car.id: car for car in cars}
        out: list[AvailabilityEvent] = []
        for cid, shown in list(self.listed.items()):
            if cid not in now:
                gone = shown.model_copy(update={"kind": "unlisted", "listed": False, "car": None})
                self.listed.pop(cid)
                out.append(gone)
        for cid, car in now.items():
            if cid not in self.listed or self.versions.get(cid, car.updated_at) < car.updated_at:
                out.append(self._show(_listed(car)))
        return out

    def accept(self, event: AvailabilityEvent, message_id: str | None = None) -> bool:
        """Whether the change is new: not seen by id, and newer than the car's last version."""
        if message_id is not None:
            if message_id in self._seen:
                return False
            self._seen[message_id] = None
            if len(self._seen) > 10_000:
                self._seen.popitem(last=False)
        known = self.versions.get(event.car_id)
        if known is not None and event.version <= known:
            return False
        if known is None and self.horizon is not None and event.version < self.horizon:
            self.versions[event.car_id] = event.version
            return False
        if event.kind in LEAVING and event.car_id not in self.listed:
            # Taking out a car the listing does not show: already shown, by its absence
            # (a change committed before the listing was read, heard after it).
            self.versions[event.car_id] = event.version
            return False
        self._show(event)
        return True

    def _show(self, event: AvailabilityEvent) -> AvailabilityEvent:
        self.versions[event.car_id] = event.version
        if event.listed:
            self.listed[event.car_id] = event
        else:
            self.listed.pop(event.car_id, None)
        if self.last_version is None or event.version > self.last_version:
            self.last_version = event.version
        return event

    def join_config(self) -> dict[str, Any]:
        """The channel's join config: private, and after the first start a replay of what
        may have been missed since the last change seen."""
        broadcast: dict[str, Any] = {"self": False, "ack": False}
        if self.last_version is not None:
            since = self.last_version - REPLAY_MARGIN
            broadcast["replay"] = {"since": int(since.timestamp() * 1000), "limit": REPLAY_LIMIT}
        return {"broadcast": broadcast, "presence": {"key": "", "enabled": False}, "private": True}


def parse_broadcast(payload: Any) -> tuple[AvailabilityEvent, str | None, bool] | None:
    """A broadcast of the topic as (event, message id, replayed), or None if it is not one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("payload"), dict):
        return None
    meta: dict[str, Any] = payload["meta"] if isinstance(payload.get("meta"), dict) else {}
    try:
        event = AvailabilityEvent.model_validate(payload["payload"])
    except ValueError:
        return None
    mid = meta.get("id")
    return event, str(mid) if mid is not None else None, bool(meta.get("replayed"))
