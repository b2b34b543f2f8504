"""Write the sync client from the async one (the supabase-py way of keeping twins in step).

    python scripts/unasync.py          # rewrite src/carbook_sdk/_sync/client.py
    python scripts/unasync.py --check  # exit 1 if it is out of date

tests/unit/test_unasync.py runs the check.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src/carbook_sdk/_async/client.py"
TARGET = ROOT / "src/carbook_sdk/_sync/client.py"

HEADER = '''"""The sync client, ``Carbook``.

GENERATED from ``carbook_sdk/_async/client.py`` by ``scripts/unasync.py``: edit that
file and re-run the script, never this one.
"""
'''

# Order matters: specific names before the generic `Async` prefix rule.
REPLACEMENTS: tuple[tuple[str, str], ...] = (
    (r"^import asyncio$", "import threading\nimport time"),
    (r"\basyncio\.Lock\(\)", "threading.Lock()"),
    (r"\basyncio\.sleep\(", "time.sleep("),
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
    (r"\bawait ", ""),
    (r"\bAsync([A-Z]\w*)", r"\1"),
    (r"\(async\)", "(sync)"),
)


def transform(source: str) -> str:
    body = source.split('"""', 2)[2].lstrip("\n")  # drop the async module docstring
    for pattern, repl in REPLACEMENTS:
        body = re.sub(pattern, repl, body, flags=re.M)
    return HEADER + "\n" + body


def main(argv: list[str]) -> int:
    generated = transform(SOURCE.read_text())
    if "--check" in argv:
        if not TARGET.is_file() or TARGET.read_text() != generated:
            print(
                f"{TARGET.relative_to(ROOT)} is out of date: run python scripts/unasync.py", file=sys.stderr
            )
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
