"""The sync clients are generated from the async ones and must not drift from them."""

from __future__ import annotations

import importlib
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASYNC = ROOT / "src/carbook_sdk/_async"
SYNC = ROOT / "src/carbook_sdk/_sync"


def test_every_sync_file_is_generated_from_its_async_twin() -> None:
    unasync = runpy.run_path(str(ROOT / "scripts" / "unasync.py"))
    sources = sorted(p.name for p in ASYNC.glob("*.py"))
    assert {"client.py", "auth.py", "cars.py", "bookings.py", "images.py", "audit.py", "admin.py"} <= set(
        sources
    )
    assert sorted(p.name for p in SYNC.glob("*.py")) == sources
    for name in sources:
        generated = unasync["transform"](name, (ASYNC / name).read_text())
        assert (SYNC / name).read_text() == generated, f"_sync/{name} is out of date: run scripts/unasync.py"
        assert "await " not in generated and "async def" not in generated, name
    assert unasync["main"](["--check"]) == 0


def test_both_clients_have_the_same_public_surface() -> None:
    import inspect

    from carbook_sdk import AsyncCarbook, Carbook

    def surface(cls: type) -> set[str]:
        return {n for n, _ in inspect.getmembers(cls) if not n.startswith("_")}

    assert surface(Carbook) - {"close"} == surface(AsyncCarbook) - {"aclose"}
    for module, name in (
        ("auth", "AuthService"),
        ("cars", "CarsService"),
        ("bookings", "BookingsService"),
        ("images", "ImagesService"),
        ("audit", "AuditService"),
        ("admin", "AdminService"),
    ):
        s = importlib.import_module(f"carbook_sdk._sync.{module}")
        a = importlib.import_module(f"carbook_sdk._async.{module}")
        assert surface(getattr(s, name)) == surface(getattr(a, "Async" + name)), name
