"""``carbook init``: a project's ``supabase/`` folder, from carbook's packaged files.

Like ``supabase init``, it makes ``supabase/config.toml`` and the folders beside it. In an
existing Supabase project (one with migrations of its own) it adds carbook's files beside
the project's, in timestamp order, and changes nothing that is there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .config import packaged_dir
from .errors import ConfigurationError, ValidationError

__all__ = ["InitResult", "init_project"]

#: What ``init`` copies, relative to ``supabase/``.
_FILES = ("config.toml", "seed.sql")
_FOLDERS = ("migrations", "rollbacks", "tests", "images")


class InitResult(BaseModel):
    """What ``init_project`` did, as paths relative to the project folder."""

    model_config = ConfigDict(frozen=True)

    root: Path
    created: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    #: carbook's migrations added to a Supabase project that had migrations of its own.
    added_beside: tuple[str, ...] = ()
    gitignore_updated: bool = False


def _carbook_files() -> dict[str, Path]:
    """Every file ``init`` writes, by its path under the project folder."""
    source = packaged_dir()
    files = {f"supabase/{name}": source / name for name in _FILES}
    for folder in _FOLDERS:
        for path in sorted((source / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[f"supabase/{path.relative_to(source).as_posix()}"] = path
    return files


def init_project(workdir: Path | str | None = None, *, force: bool = False) -> InitResult:
    """Create ``supabase/`` in ``workdir`` (default: the current folder).

    A folder that already has carbook's files is refused unless ``force``, naming what
    would be replaced. A Supabase project with migrations of its own gets carbook's files
    added beside them; nothing of its own is changed (its own ``config.toml`` stays).
    ``.carbook/`` is added to an existing ``.gitignore``.

    Raises:
        ValidationError: ``workdir`` is not a folder; or files would be replaced without ``force``.
    """
    root = Path(workdir or Path.cwd()).expanduser()
    if not root.is_dir():
        raise ValidationError(f"{root} is not a folder", hint="create it first, or pass another --workdir")
    root = root.resolve()
    wanted = _carbook_files()
    existing_migrations = {p.name for p in (root / "supabase" / "migrations").glob("*.sql")}
    ours = {Path(k).name for k in wanted if k.startswith("supabase/migrations/")}
    present = {rel for rel in wanted if (root / rel).exists()}
    # A Supabase project of its own: migrations that are not carbook's, or a config.toml
    # of its own where none of carbook's migrations is yet.
    foreign = bool(existing_migrations - ours) or (
        (root / "supabase" / "config.toml").is_file() and not existing_migrations & ours
    )
    if foreign:
        # A Supabase project of its own: add what is missing, touch nothing that is there.
        todo = {rel: src for rel, src in wanted.items() if rel not in present}
        replaced: list[str] = []
    else:
        differing = sorted(rel for rel in present if (root / rel).read_bytes() != wanted[rel].read_bytes())
        if differing and not force:
            shown = ", ".join(differing[:8]) + (
                f" and {len(differing) - 8} more" if len(differing) > 8 else ""
            )
            raise ValidationError(
                f"{root / 'supabase'} already exists; init would replace {shown}",
                hint="nothing was changed; pass --force to replace them",
            )
        todo = {rel: src for rel, src in wanted.items() if rel not in present or rel in differing}
        replaced = differing
    try:
        for rel, src in todo.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        gitignore = root / ".gitignore"
        updated = False
        if gitignore.is_file():
            lines = gitignore.read_text().splitlines()
            if not any(line.strip().rstrip("/") in (".carbook", "/.carbook") for line in lines):
                with gitignore.open("a") as f:
                    f.write(
                        ("" if not lines or gitignore.read_text().endswith("\n") else "\n") + ".carbook/\n"
                    )
                updated = True
    except OSError as exc:
        raise ConfigurationError(f"cannot write the project in {root}: {exc.strerror or exc}") from None
    created = sorted(rel for rel in todo if rel not in replaced)
    return InitResult(
        root=root,
        created=tuple(created),
        replaced=tuple(replaced),
        added_beside=tuple(r for r in created if r.startswith("supabase/migrations/")) if foreign else (),
        gitignore_updated=updated,
    )
