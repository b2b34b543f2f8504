"""The SDK tours of the docs, and the README's taste, are executed against the stack:
the docs cannot rot."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

from carbook_stack.manager import LocalStack

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SDK_DOCS = (ROOT / "docs" / "sdk.md").read_text()


def _tour(title: str, text: str = SDK_DOCS, level: str = "##") -> str:
    section = text.split(f"{level} {title}\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, title
    return match.group(1)


def _run(code: str, stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> str:
    s = stack.settings
    monkeypatch.setenv("SUPABASE_URL", s.api_url)
    monkeypatch.setenv("SUPABASE_ANON_KEY", s.anon_key)
    monkeypatch.setenv("SUPABASE_DB_URL", s.db_url)
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs", "exec"), {"__name__": "__readme__"})
    return out.getvalue()


def test_sync_tour(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _run(_tour("Tour (sync)"), stack, monkeypatch)
    lines = out.splitlines()
    assert lines[0].startswith(
        f"₹1,499.00 {stack.settings.api_url}/storage/v1/object/public/car-images/cars/"
    )
    assert lines[1:] == ["booked", "Already booked. Be fast next time."]


def test_async_tour(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _run(_tour("Tour (async)"), stack, monkeypatch)
    assert "booked by me: ['Seltos']" in out  # the seeded driver's booking
    assert re.search(r"^\d+ more$", out, re.M)
    assert len([line for line in out.splitlines() if "₹" in line or "¥" in line or "$" in line]) >= 5
    assert os.environ.get("SUPABASE_URL") == stack.settings.api_url


def test_the_readme_taste_is_the_sync_tour() -> None:
    """The README shows the docs' sync tour, which test_sync_tour runs (its users can sign
    up once per stack, so it runs once)."""
    assert _tour("A taste", README) == _tour("Tour (sync)")
