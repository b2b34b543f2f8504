"""cars.watch(): the listing first, then every change once, across a Realtime restart."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from typing import Any

from carbook_sdk import AsyncCarbook, AvailabilityEvent, Carbook
from carbook_stack.manager import LocalStack

from ..helpers import make_cars, stack_db


def _set(stack: LocalStack, sql: str, car: str) -> None:
    with stack_db(stack) as conn:
        conn.execute(sql, (car,))


def test_watch_resumes_after_realtime_is_killed_with_no_missed_or_repeated_event(
    own_stack: LocalStack,
) -> None:
    own_stack.start()
    s = own_stack.settings
    a, b, c = make_cars(own_stack, 3, f"watch-{uuid.uuid4().hex[:6]}")

    async def scenario() -> list[AvailabilityEvent]:
        got: list[AvailabilityEvent] = []
        client = AsyncCarbook(s.api_url, s.publishable_key)

        async def consume() -> None:
            async for event in client.cars.watch():
                got.append(event)

        async def until(check: Any, timeout: float = 20.0) -> None:
            for _ in range(int(timeout / 0.05)):
                if check():
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"not heard in time: {[(e.kind, str(e.car_id)[:8]) for e in got]}")

        task = asyncio.create_task(consume())
        await until(lambda: {a, b, c} <= {str(e.car_id) for e in got if e.kind == "listed"})
        _set(own_stack, "update public.cars set price_in_paise = 111 where id = %s", a)
        await until(lambda: any(e.kind == "price_changed" for e in got))
        realtime = next(p for p in own_stack.status().parts if p.name == "realtime")
        assert realtime.pid is not None
        os.kill(realtime.pid, signal.SIGKILL)
        # Committed while Realtime is down: kept in realtime.messages, replayed on rejoin.
        _set(own_stack, "update public.cars set price_in_paise = 222 where id = %s", b)
        _set(own_stack, "update public.cars set is_published = false where id = %s", c)
        await asyncio.to_thread(own_stack.start)
        _set(own_stack, "update public.cars set price_in_paise = 333 where id = %s", a)
        await until(lambda: sum(e.kind != "listed" for e in got) >= 4)
        await asyncio.sleep(0.5)  # anything repeated would arrive now
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        return got

    got = asyncio.run(scenario())
    changes = [(str(e.car_id), e.kind, e.price_in_paise) for e in got if e.kind != "listed"]
    assert changes == [
        (a, "price_changed", 111),
        (b, "price_changed", 222),
        (c, "unpublished", 100000),
        (a, "price_changed", 333),
    ]
    listed = [str(e.car_id) for e in got if e.kind == "listed"]
    assert len(listed) == len(set(listed)), "each car listed once"


def test_the_sync_watch_lists_first_and_stops_when_the_caller_does(stack: LocalStack) -> None:
    (car,) = make_cars(stack, 1, f"sync-watch-{uuid.uuid4().hex[:6]}")
    s = stack.settings
    with Carbook(s.api_url, s.publishable_key) as client:
        events = client.cars.watch()
        seen = []
        for event in events:
            seen.append(event)
            if str(event.car_id) == car:
                break
        events.close()
    assert all(e.kind == "listed" for e in seen)
    assert seen[-1].car is not None and seen[-1].car.booked_by is None
