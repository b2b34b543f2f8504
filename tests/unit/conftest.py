"""The unit tier: no PostgreSQL, no stack, no network; seconds. A test here that asks for
a server fails at once instead of starting one (put it in a tier that has servers)."""

from __future__ import annotations

from typing import Any

import pytest


def _refused(*_: Any) -> Any:
    pytest.fail("tests/unit runs without servers: this test belongs in a tier that has them")


@pytest.fixture(scope="session")
def pg_server() -> Any:
    _refused()


@pytest.fixture(scope="session")
def stack() -> Any:
    _refused()
