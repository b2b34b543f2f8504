"""Write the sync clients from the async ones (the supabase-py way of keeping twins in step).

    python scripts/unasync.py          # rewrite src/carbook_sdk/_sync/ from src/carbook_sdk/_async/
    python scripts/unasync.py --check  # exit 1 if any file there is out of date

Every ``.py`` file of ``_async/`` becomes the file of the same name in ``_sync/``, by the
rules below; ``tests/unit/test_unasync.py`` runs the check.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src/carbook_sdk/_async"
TARGET = ROOT / "src/carbook_sdk/_sync"

HEADER = '''"""GENERATED from ``carbook_sdk/_async/{name}`` by ``scripts/unasync.py``: edit that
file and re-run the script, never this one.

{doc}
"""
'''

# Order matters: specific names before the generic `Async` prefix rule.
REPLACEMENTS: tuple[tuple[str, str], ...] = (
    (r"^import asyncio$", "import threading\nimport time"),
    (r"\basyncio\.Lock\(\)", "threading.Lock()"),
    (r"\basyncio\.sleep\(", "time.sleep("),
    (r"\bgather_limited\b", "run_limited"),
    (r"\breceive_within\b", "receive_before"),
    (r"\bwebsockets\.asyncio\.client\b", "websockets.sync.client"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAwaitable, Callable\b", "Callable"),
    (r"Callable\[\.\.\., Awaitable\[(\w+)\]\]", r"Callable[..., \1]"),
    (r"\bAsyncMemoryStorage\b", "SyncMemoryStorage"),
    (r"\bAsyncSupportedStorage\b", "SyncSupportedStorage"),
    (r"\basync def aclose\b", "def close"),
    (r"\baclose\(\)", "close()"),
    (r"`aclose`", "`close`"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\(await ([\w.]+\([^()]*\))\)", r"\1"),  # (await x.f()).g -> x.f().g
    (r"\bawait ", ""),
    (r"\bAsync([A-Z]\w*)", r"\1"),
    (r"\(async\)", "(sync)"),
)


def transform(name: str, source: str) -> str:
    doc, body = source.split('"""', 2)[1:]
    body = body.lstrip("\n")
    for pattern, repl in REPLACEMENTS:
        body = re.sub(pattern, repl, body, flags=re.M)
    for module in ("threading", "time"):  # what `import asyncio` became, where unused
        if not re.search(rf"\b{module}\.\w", body):
            body = body.replace(f"import {module}\n", "", 1)
    # `import asyncio` became other modules: keep the plain imports sorted, as ruff wants them.
    body = re.sub(
        r"(?:^import \w+\n)+",
        lambda m: "".join(sorted(m.group(0).splitlines(keepends=True))),
        body,
        count=1,
        flags=re.M,
    )
    doc = re.sub(r"\(async\)", "(sync)", doc.strip())
    doc = re.sub(r"\bAsync([A-Z]\w*)", r"\1", doc)
    return HEADER.format(name=name, doc=doc) + "\n" + body


def generated() -> dict[Path, str]:
    return {TARGET / src.name: transform(src.name, src.read_text()) for src in sorted(SOURCE.glob("*.py"))}


def main(argv: list[str]) -> int:
    files = generated()
    if "--check" in argv:
        stale = sorted(
            str(path.relative_to(ROOT))
            for path, text in files.items()
            if not path.is_file() or path.read_text() != text
        )
        extra = sorted(str(p.relative_to(ROOT)) for p in TARGET.glob("*.py") if p not in files)
        if stale or extra:
            print(f"out of date: {', '.join(stale + extra)}: run python scripts/unasync.py", file=sys.stderr)
            return 1
        return 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for path in TARGET.glob("*.py"):
        if path not in files:
            path.unlink()
    for path, text in files.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
