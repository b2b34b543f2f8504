"""Typer's Rich help without the parts of Rich that carbook's help never uses.

Typer draws help with ``typer.rich_utils``, which imports ``rich.markdown`` (markdown-it,
and Pygments through ``rich.syntax``) and ``rich.traceback`` at its top. carbook's help
uses neither: its markup mode is ``"rich"`` (``Markdown`` is only built in ``"markdown"``
mode) and pretty exceptions are off (``Traceback`` is only built for them). Importing
them was about a third of ``carbook --help``'s time, which shell completion pays on every
Tab. So, when help is about to be drawn, ``typer.rich_utils`` is imported with stand-ins
for those two names that import the real class the first time one is used: help looks
exactly as before, and anything that does need them still gets the real thing.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["HEAVY_FOR_HELP", "help_requested", "import_rich_utils_lightly"]

#: Modules ``typer.rich_utils`` would load that carbook's help does not need.
HEAVY_FOR_HELP = ("rich.markdown", "rich.traceback", "rich.syntax", "markdown_it", "pygments")


class _DeferredMeta(type):
    def __getattr__(cls, name: str) -> Any:  # class attributes: Traceback.from_exception
        return getattr(cls._real(), name)


def _deferred(module: str, name: str) -> type:
    """A class standing in for ``module.name`` (a class, so ``Markdown | Text`` in
    annotations still works): making one, or reading a class attribute, imports the real
    class and hands over to it."""

    def real() -> Any:
        return getattr(importlib.import_module(module), name)

    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        return real()(*args, **kwargs)

    return _DeferredMeta(name, (), {"__new__": new, "_real": staticmethod(real), "__module__": module})


def import_rich_utils_lightly() -> None:
    """Import ``typer.rich_utils`` without ``rich.markdown`` and ``rich.traceback``."""
    if "typer.rich_utils" in sys.modules:
        return
    stand_ins = {}
    for module, name in (("rich.markdown", "Markdown"), ("rich.traceback", "Traceback")):
        if module not in sys.modules:
            stand_in = types.ModuleType(module)
            setattr(stand_in, name, _deferred(module, name))
            stand_ins[module] = stand_in
    sys.modules.update(stand_ins)
    try:
        import typer.rich_utils  # noqa: F401
    finally:
        # Gone again at once: a later `import rich.markdown` loads the real module.
        for module, stand_in in stand_ins.items():
            if sys.modules.get(module) is stand_in:
                del sys.modules[module]


def help_requested(args: list[str]) -> bool:
    """Whether these arguments may end in help being drawn: ``-h``/``--help`` before any
    ``--``, or no arguments at all (the root has ``no_args_is_help``)."""
    if not args:
        return True
    for arg in args:
        if arg == "--":
            return False
        if arg in ("-h", "--help"):
            return True
    return False
