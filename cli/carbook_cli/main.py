"""The `carbook` application: global options and the one error boundary."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from carbook_sdk import __version__
from carbook_sdk.errors import CarbookError

from . import db, stack
from .output import err_console, exit_code_for, print_error


class _State:
    verbose = False


state = _State()


class CarbookGroup(TyperGroup):
    """Turns every CarbookError raised below it into one line on stderr and an exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CarbookError as exc:
            if state.verbose:
                err_console.print_exception()
            print_error(exc)
            raise typer.Exit(exit_code_for(exc)) from None


app = typer.Typer(
    name="carbook",
    cls=CarbookGroup,
    help="Book cars atomically on Supabase: one car, exactly one winner.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(db.app, name="db")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"carbook {__version__}")
        raise typer.Exit()


@app.callback()
def callback(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks and more detail on errors.")
    ] = False,
) -> None:
    """Book cars atomically on Supabase: one car, exactly one winner."""
    state.verbose = verbose


def main() -> None:
    app()
