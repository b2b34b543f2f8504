"""The SDK's types catch a wrong call before it runs: mypy (strict, as the test command
runs it) on code a developer might write."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
import uuid
from carbook_sdk import Carbook, CarUpdate, Money

def change(client: Carbook, car_id: uuid.UUID) -> None:
    client.cars.update(car_id, price=Money.of("1499", "INR"), is_published=True)
    client.cars.update(car_id, CarUpdate(make="Tata"))
    client.cars.list_all(status="booked")
"""

#: Each wrong line, and what mypy must say of it.
BAD = [
    ('client.cars.update(car_id, prise=Money.of("1499", "INR"))', 'Unexpected keyword argument "prise"'),
    (
        'client.cars.update(car_id, price="1499")',
        'Argument "price" to "update" of "CarsService" has incompatible type',
    ),
    (
        'client.cars.update(car_id, year="2024")',
        'Argument "year" to "update" of "CarsService" has incompatible type',
    ),
    (
        'client.cars.list_all(status="sold")',
        'Argument "status" to "list_all" of "CarsService" has incompatible type',
    ),
]


def _mypy(tmp_path: Path, body: str) -> tuple[str, int]:
    path = tmp_path / "snippet.py"
    path.write_text(body)
    # The project's own cache: the test command has just type-checked the SDK with it.
    out, err, status = api.run(["--strict", "--cache-dir", str(ROOT / ".mypy_cache"), str(path)])
    return out + err, status


def test_a_right_call_type_checks(tmp_path: Path) -> None:
    out, status = _mypy(tmp_path, GOOD)
    assert status == 0, out


@pytest.mark.parametrize(("line", "message"), BAD, ids=[b[0].split("(", 1)[1][:30] for b in BAD])
def test_a_wrong_call_is_a_type_error(tmp_path: Path, line: str, message: str) -> None:
    body = GOOD + f"\ndef wrong(client: Carbook, car_id: uuid.UUID) -> None:\n    {line}\n"
    out, status = _mypy(tmp_path, body)
    assert status == 1 and message in out, out
