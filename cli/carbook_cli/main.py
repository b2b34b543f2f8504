"""The `carbook` application: global options and the one error boundary."""

import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from carbook_sdk import __version__
from carbook_sdk.env import ENV_VARS
from carbook_sdk.errors import CarbookError, ValidationError

from . import admin, audit, auth, bookings, cars, db, project, race, stack_missing
from .context import state
from .output import err_console, exit_code_for, fit_terminal, print_error, print_json
from .rich_help import help_requested, import_rich_utils_lightly

#: Typer checks option types with pydantic, whose words are a library's ("Input should
#: be a valid integer, unable to parse string as an integer"): said as a person would.
_PLAIN = (
    (re.compile(r"Input should be a valid integer(, [^.;]*)?"), "must be a whole number"),
    (re.compile(r"Input should be a valid number(, [^.;]*)?"), "must be a number"),
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"must be at least \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"must be at most \1"),
    (re.compile(r"Input should be greater than (\S+)"), r"must be more than \1"),
    (re.compile(r"Input should be less than (\S+)"), r"must be less than \1"),
)


def _plain(message: str) -> str:
    for pattern, words in _PLAIN:
        message = pattern.sub(words, message)
    return message


class CarbookGroup(TyperGroup):
    """Turns every CarbookError raised below it into one line on stderr (and, with --json,
    an error document on stdout) and an exit code."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Read before anything is parsed: an option value that fails to parse must still
        # be reported as JSON when the command line asked for JSON.
        state.json = "--json" in (args[: args.index("--")] if "--" in args else args)
        state.json_printed = False
        fit_terminal()
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:  # typer.Context; its click base is private to typer
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            if type(exc).__name__ == "MissingParameter":  # click's subclass for a missing one
                return self._usage_error(exc)
            # The one exit-code rule: an invalid value is 3 whichever option it came in,
            # whether click's type check or carbook's own check found it; 2 is kept for
            # the command line's shape (an unknown option, a missing argument).
            invalid = ValidationError(_plain(exc.format_message()))
            print_error(invalid)
            raise typer.Exit(exit_code_for(invalid)) from None
        except CarbookError as exc:
            if state.verbose:
                err_console.print_exception()
            print_error(exc)
            raise typer.Exit(exit_code_for(exc)) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            _reader_gone()
        except Exception as exc:
            if type(exc).__module__.startswith(("typer", "click")):
                return self._usage_error(exc)  # the command line's shape: usage, exit 2
            # A bug of ours must still be one line, not a traceback (that with --verbose).
            if state.verbose:
                err_console.print_exception()
            print_error(CarbookError(f"unexpected {type(exc).__name__}: {exc}"))
            raise typer.Exit(1) from None

    @staticmethod
    def _usage_error(exc: Exception) -> Any:
        """The command line's own shape is wrong (click's UsageError; typer>=0.20 vendors
        click, so it is matched by module, not class): Typer prints usage and exits 2.
        With --json, stdout gets the error document too, so a script reads one format."""
        if state.json and not state.json_printed and getattr(exc, "exit_code", None) == 2:
            ctx = getattr(exc, "ctx", None)
            hint = f"see `{ctx.command_path} --help`" if ctx is not None else None
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            print_json({"error": {"code": "usage_error", "message": message, "hint": hint}})
        raise exc


app = typer.Typer(
    name="carbook",
    cls=CarbookGroup,
    help="Book cars atomically on Supabase: one car, exactly one winner.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
try:  # `carbook stack` only where the local stack is installed (fastapi-cli's pattern)
    import carbook_stack  # noqa: F401  (cheap: it checks its dependencies, imports none)

    from . import stack

    app.add_typer(stack.app, name="stack")
except ImportError:
    app.add_typer(stack_missing.app, name="stack")
app.command("init")(project.init)
app.add_typer(auth.app, name="auth")
app.add_typer(cars.app, name="cars")
app.command("book")(bookings.book)
app.add_typer(bookings.app, name="bookings")
app.command("race")(race.race)
app.add_typer(audit.app, name="audit")
app.add_typer(admin.app, name="admin")
app.add_typer(db.app, name="db")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"carbook {__version__}")
        raise typer.Exit()


@app.callback()
def callback(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar=list(ENV_VARS["url"]),
            help="Project URL. Default: the local stack.",
            show_envvar=True,
        ),
    ] = None,
    publishable_key: Annotated[
        str | None,
        typer.Option(
            "--publishable-key",
            envvar=list(ENV_VARS["key"]),
            help="The project's publishable key (sb_publishable_…, or a legacy anon key). Default: the local stack's.",
            show_envvar=True,
        ),
    ] = None,
    secret_key: Annotated[
        str | None,
        typer.Option(
            "--secret-key",
            envvar=list(ENV_VARS["secret_key"]),
            help="The secret key (sb_secret_…, or a legacy service_role key), for `admin` and `race`. "
            "Default: the local stack's.",
            show_envvar=True,
        ),
    ] = None,
    anon_key: Annotated[str | None, typer.Option("--anon-key", hidden=True)] = None,
    service_role_key: Annotated[str | None, typer.Option("--service-role-key", hidden=True)] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            help="The project folder (holding supabase/config.toml). Default: the nearest one from here upwards.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks and more detail on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Book cars atomically on Supabase: one car, exactly one winner."""
    from carbook_sdk.config import use_workdir

    state.verbose = verbose
    # `init` makes a project, so its folder need not be one yet; it reads --workdir itself.
    use_workdir(workdir if ctx.invoked_subcommand != "init" else None)
    state.workdir = workdir
    state.url = url
    # --anon-key and --service-role-key are the legacy names, kept (hidden) as aliases.
    state.key = _one_of(ctx, "publishable_key", publishable_key, anon_key)
    state.secret_key = _one_of(ctx, "secret_key", secret_key, service_role_key)


_ALIASES = {
    "publishable_key": ("--publishable-key", "--anon-key"),
    "secret_key": ("--secret-key", "--service-role-key"),
}


def _one_of(ctx: typer.Context, name: str, value: str | None, alias_value: str | None) -> str | None:
    """An option given by its name or its legacy alias. The alias on the command line wins
    over the option's environment variables; both on the command line, differing, is an error."""
    if alias_value is None:
        return value
    source = ctx.get_parameter_source(name)
    if value is not None and value != alias_value and source is not None and source.name == "COMMANDLINE":
        flag, alias = _ALIASES[name]
        # Two spellings of one option is the command line's shape, not a bad value: exit 2.
        ctx.fail(f"{flag} and {alias} are the same option: pass one of them")
    return alias_value


def _reader_gone() -> None:
    """Whoever read the output went away (`carbook cars list | head -1`): stop without a
    word and exit 1, as Rich and click do where they meet it first. stdout goes to
    /dev/null first, or the interpreter's last flush would meet the closed pipe again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise SystemExit(1)


def main() -> None:
    if help_requested(sys.argv[1:]):
        import_rich_utils_lightly()
    try:
        try:
            app()
        finally:
            sys.stdout.flush()  # here, not at exit, so a closed pipe is met where it is handled
    except BrokenPipeError:
        _reader_gone()
