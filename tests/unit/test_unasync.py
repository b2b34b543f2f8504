"""The sync client is generated from the async one and must not drift from it."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sync_client_is_up_to_date() -> None:
    unasync = runpy.run_path(str(ROOT / "scripts" / "unasync.py"))
    source = (ROOT / "src/carbook_sdk/_async/client.py").read_text()
    generated = unasync["transform"](source)
    assert (ROOT / "src/carbook_sdk/_sync/client.py").read_text() == generated
    assert "await " not in generated and "async def" not in generated


def test_both_clients_have_the_same_public_surface() -> None:
    import inspect

    from carbook_sdk import AsyncCarbook, Carbook
    from carbook_sdk._async import client as a
    from carbook_sdk._sync import client as s

    def surface(cls: type) -> set[str]:
        return {n for n, _ in inspect.getmembers(cls) if not n.startswith("_")}

    assert surface(Carbook) - {"close"} == surface(AsyncCarbook) - {"aclose"}
    for name in (
        "AuthService",
        "CarsService",
        "BookingsService",
        "ImagesService",
        "AuditService",
        "AdminService",
    ):
        assert surface(getattr(s, name)) == surface(getattr(a, "Async" + name)), name
