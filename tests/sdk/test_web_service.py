"""docs/sdk.md's web-service example, run for real: uvicorn serving the FastAPI app, the
SDK's as_user per request, against the stack; a forged token is a 401 and books nothing."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from carbook_sdk import Carbook, Money, NewCar
from carbook_stack.local_postgres import free_port
from carbook_stack.manager import LocalStack
from tests.helpers import PNG, carbook_for, unique_email

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "sdk.md").read_text()


def test_the_documented_fastapi_service_books_for_its_callers(
    stack: LocalStack, admin: Carbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    s = stack.settings
    monkeypatch.setenv("SUPABASE_URL", s.api_url)
    monkeypatch.setenv("SUPABASE_PUBLISHABLE_KEY", s.publishable_key)
    code = re.search(r"## A web service \(as_user\)\n.*?```python\n(.*?)```", DOCS, re.S)
    assert code is not None
    scope: dict[str, Any] = {"__name__": "service"}
    exec(compile(code.group(1), "docs/sdk.md", "exec"), scope)
    car = admin.cars.create(
        NewCar(make="Kia", model="Web", year=2024, price=Money.of("1", "INR"), is_published=True), PNG
    )
    with carbook_for(stack) as person:
        me = person.auth.sign_up(unique_email("web"), "correct-horse-9")
        token = str(person.auth.access_token())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(scope["app"], host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/cars/{car.id}/booking"
        head, body, sig = token.split(".")
        forged = httpx.post(url, headers={"Authorization": f"Bearer {head}.{body}.{sig[:-4]}AAAA"})
        assert forged.status_code == 401 and forged.json()["error"] == "invalid_token"
        assert admin.cars.get(car.id).booking_status == "available"
        booked = httpx.post(url, headers={"Authorization": f"Bearer {token}"})
        assert booked.status_code == 200, booked.text
        assert booked.json() == {"car_id": str(car.id), "booked_by": str(me.id)}
        again = httpx.post(url, headers={"Authorization": f"Bearer {token}"})
        assert again.status_code == 200  # the winner's retry: already theirs
    finally:
        server.should_exit = True
        thread.join(timeout=10)
