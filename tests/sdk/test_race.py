"""`carbook_sdk.race`: its input checked before anything is made, and its users deleted
again however the race ends — but the winner, whose booking names them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import carbook_sdk.race as race_module
from carbook_sdk import CarbookConnectionError, ValidationError
from carbook_sdk.config import LOCAL_ANON_KEY, LOCAL_SECRET_KEY
from carbook_sdk.race import race
from carbook_sdk.settings import Settings
from carbook_stack.local_postgres import free_port
from carbook_stack.manager import LocalStack

from ..helpers import make_cars, stack_db


def _racers(stack: LocalStack) -> int:
    with stack_db(stack) as conn:
        row = conn.execute("select count(*) from auth.users where email like 'racer-%'").fetchone()
    assert row is not None
    return int(row[0])


def _settings(stack: LocalStack) -> Settings:
    s = stack.settings
    return Settings.resolve(url=s.api_url, key=s.publishable_key, secret_key=s.secret_key, env={})


@pytest.mark.parametrize("clients", [1, 0, -3, 501, True, "3", 2.5, None])
def test_race_refuses_a_bad_number_of_clients_before_sending_anything(clients: Any) -> None:
    nowhere = Settings.resolve(
        url=f"http://127.0.0.1:{free_port()}", key=LOCAL_ANON_KEY, secret_key=LOCAL_SECRET_KEY, env={}
    )
    with pytest.raises(ValidationError) as caught:
        asyncio.run(race("1e5a9c1d-4b7d-4f2e-9a63-5d8e7c000001", clients, settings=nowhere))
    assert str(caught.value) == f"clients must be a whole number from 2 to 500, not {clients!r}"


def test_an_error_part_way_deletes_the_users_made(stack: LocalStack, monkeypatch: Any) -> None:
    (car,) = make_cars(stack, 1, "race-error")
    before = _racers(stack)

    async def broken(*args: Any) -> Any:
        assert _racers(stack) == before + 3  # the users exist when the race breaks
        raise CarbookConnectionError("the network went away")

    monkeypatch.setattr(race_module, "_run", broken)
    with pytest.raises(CarbookConnectionError, match="the network went away"):
        asyncio.run(race(car, 3, settings=_settings(stack)))
    assert _racers(stack) == before


def test_a_cancelled_race_deletes_its_users(stack: LocalStack, monkeypatch: Any) -> None:
    """Ctrl-C: asyncio.run cancels the race's task; its clean-up still runs."""
    (car,) = make_cars(stack, 1, "race-cancel")
    before = _racers(stack)

    async def cancelled() -> None:
        started = asyncio.Event()

        async def forever(*args: Any) -> Any:
            started.set()
            await asyncio.Event().wait()

        monkeypatch.setattr(race_module, "_run", forever)
        task = asyncio.create_task(race(car, 2, settings=_settings(stack)))
        await started.wait()
        assert _racers(stack) == before + 2
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert _racers(stack) == before
