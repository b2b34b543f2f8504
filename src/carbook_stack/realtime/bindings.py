"""postgres_changes bindings: what a join asks for, parsed as Supabase Realtime parses it.

A join's ``config.postgres_changes`` lists bindings (``event``, ``schema``, ``table``,
``filter``, ``select``). Each gets the id Realtime gives it (a hash of its params, so the
same binding always has the same id, and never 0, which the clients take for "none"), and
is parsed into an event, a schema, a table and filters. A binding that cannot be parsed
is not the join's failure: the join is accepted and the subscription's ``system`` message
says why, as on hosted Realtime. Nothing here does I/O.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

__all__ = ["OPERATORS", "Binding", "BindingError", "Filter", "binding_id", "describe", "inspect", "parse"]

#: Filter operators and the SQL each becomes (``in`` compares against an array).
OPERATORS: dict[str, str] = {
    "eq": "=",
    "neq": "<>",
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
    "in": "= any",
}


class BindingError(ValueError):
    """A binding Realtime would refuse, with Realtime's message."""


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    #: The value as Realtime stores it: for ``in``, a PostgreSQL array literal ``{a,b}``.
    value: str
    negate: bool = False


@dataclass(frozen=True)
class Binding:
    id: int
    #: ``*``, ``INSERT``, ``UPDATE`` or ``DELETE``.
    event: str
    schema: str
    #: A table name, or ``*`` for every table of the schema in the publication.
    table: str
    filters: tuple[Filter, ...] = ()
    select: tuple[str, ...] | None = None

    def wants(self, action: str) -> bool:
        return self.event in ("*", action)


def binding_id(params: dict[str, Any]) -> int:
    """Realtime's id for a binding: a 27-bit hash of its params (non-zero)."""
    digest = zlib.crc32(json.dumps(params, sort_keys=True, default=str).encode()) & 0x7FFFFFF
    return digest or 1


def inspect(value: object) -> str:
    """A value as Elixir's ``inspect`` shows it, for Realtime's messages."""
    if value is None:
        return "nil"
    if value is True or value is False:
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = ", ".join(
            f"{inspect(k)} => {inspect(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
        )
        return "%{" + items + "}"
    if isinstance(value, list | tuple):
        inner = ", ".join(inspect(v) for v in value)
        return "{" + inner + "}" if isinstance(value, tuple) else "[" + inner + "]"
    return str(value)


def describe(b: Binding) -> str:
    """A binding's params as Realtime's subscription errors list them."""
    filters = [(f.column, f.op, f.value, f.negate) for f in b.filters]
    select = list(b.select) if b.select is not None else None
    return f"[event: {b.event}, schema: {b.schema}, table: {b.table}, filters: {inspect(filters)}, select: {inspect(select)}]"


def _event(params: dict[str, Any]) -> str:
    event = params.get("event")
    if isinstance(event, str) and event.upper() in ("INSERT", "UPDATE", "DELETE"):
        return event.upper()
    return "*"


def parse(params: object, id_: int) -> Binding:
    """One binding of a join.

    Raises:
        BindingError: Realtime's ``No subscription params provided…`` or
            ``Error parsing `filter` params: …``.
    """
    if not isinstance(params, dict):
        raise BindingError(
            "No subscription params provided. Please provide at least a `schema` or `table` "
            f"to subscribe to: {inspect(params)}"
        )
    select = _select(params)
    schema, table, filt = params.get("schema"), params.get("table"), params.get("filter")
    if isinstance(schema, str) and isinstance(table, str) and isinstance(filt, str):
        filters = _filters(filt)
    elif isinstance(schema, str) and isinstance(table, str) and "filter" not in params:
        filters = ()
    elif isinstance(schema, str) and "table" not in params and "filter" not in params:
        table, filters = "*", ()
    elif isinstance(table, str) and "schema" not in params and "filter" not in params:
        schema, filters = "public", ()
    else:
        shown = "<redacted>" if "user_token" in params or "auth_token" in params else inspect(params)
        raise BindingError(
            "No subscription params provided. Please provide at least a `schema` or `table` "
            f"to subscribe to: {shown}"
        )
    assert isinstance(schema, str) and isinstance(table, str)
    if select is not None and "*" in (schema, table):
        raise BindingError(
            "Column selection is not supported for wildcard subscriptions. "
            "Provide an explicit schema and table name."
        )
    return Binding(id_, _event(params), schema, table, filters, select)


def _select(params: dict[str, Any]) -> tuple[str, ...] | None:
    cols = params.get("select")
    if isinstance(cols, str):
        raise BindingError(
            'Error parsing `select` params: expected a list of column name strings, e.g. select: ["col1", "col2"]'
        )
    if isinstance(cols, list):
        names = tuple(c for c in cols if isinstance(c, str))
        return names or None
    return None


def _filters(text: str) -> tuple[Filter, ...]:
    if not text.strip():
        return ()
    return tuple(_segment(s) for s in _split(text.strip()))


def _split(text: str) -> list[str]:
    """Split at top-level commas: not inside ``in.(…)`` parentheses or double quotes."""
    parts, current, depth, quoted = [], "", 0, False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and ch == ",":
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    return parts


def _segment(segment: str) -> Filter:
    def fail(reason: str) -> BindingError:
        return BindingError(f"Error parsing `filter` params: {reason}")

    trimmed = segment.strip()
    if not trimmed:
        raise fail("filter must not contain empty segments (check for extra commas)")
    col_rest = trimmed.split("=", 1)
    if len(col_rest) != 2:
        raise fail(inspect(col_rest))
    column, rest = col_rest
    negate = rest.startswith("not.")
    op_value = rest.removeprefix("not.").split(".", 1)
    if len(op_value) != 2:
        raise fail(inspect(op_value))
    op, value = op_value
    if op not in OPERATORS:
        raise fail(inspect([op, value]))
    if op == "in":
        if not (len(value) >= 2 and value.startswith("(") and value.endswith(")")):
            raise fail("`in` filter value must be wrapped by parentheses")
        value = "{" + value[1:-1] + "}"
    elif len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return Filter(column, op, value, negate)
