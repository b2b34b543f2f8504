"""`carbook init`: a project's supabase/ folder, like `supabase init`."""

from pathlib import Path
from typing import Annotated

import typer

from .context import state
from .output import console, escape, print_json


def init(
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="The folder to make a project of. Default: the current folder."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace carbook's files that are already there (listed).")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")] = False,
) -> None:
    """Create supabase/ here: config.toml, carbook's migrations, rollbacks, seed, tests and the
    sample image. In a Supabase project with migrations of its own, add carbook's beside them."""
    from carbook_sdk.project import init_project

    result = init_project(workdir or state.workdir, force=force)
    if json:
        print_json(result.model_dump(mode="json"))
        return
    where = escape(str(result.root))
    if result.added_beside:
        console.print(
            f"Added carbook's {len(result.added_beside)} migrations beside your own in {where}/supabase."
        )
    elif result.created or result.replaced:
        console.print(f"Initialised a carbook project in {where}.")
    else:
        console.print(f"Nothing to do: {where} already has carbook's files.")
    for rel in result.replaced:
        console.print(f"  replaced {escape(rel)}")
    if result.gitignore_updated:
        console.print("  added .carbook/ to .gitignore")
    console.print("Next: [bold]carbook stack start[/], then [bold]carbook db verify[/].")
