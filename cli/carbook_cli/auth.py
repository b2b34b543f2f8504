"""`carbook auth`: sign in and out; the session is kept in a 0600 file."""

from typing import Annotated

import typer

from carbook_sdk.env import EMAIL_VARS, PASSWORD_VARS

from .context import ask, check_session_writable, client, session_path, settings
from .output import console, escape, print_json

app = typer.Typer(
    help="Sign in and out. The session is saved (mode 0600) and refreshed when it expires.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]


@app.command()
def login(
    email: Annotated[
        str | None,
        typer.Option("--email", "-e", envvar=list(EMAIL_VARS), help="Your email (prompted when missing)."),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            envvar=list(PASSWORD_VARS),
            help="Your password (prompted, hidden, when missing; prefer the prompt or the variable).",
        ),
    ] = None,
    json: Json = False,
) -> None:
    """Sign in with email and password."""
    if email is None:
        email = ask("Email")
    if password is None:
        password = ask("Password", secret=True)
    check_session_writable()
    with client() as cb:
        user = cb.auth.sign_in(email, password)
        admin = cb.auth.is_admin()
    if json:
        print_json({"id": str(user.id), "email": user.email, "admin": admin})
        return
    console.print(f"Signed in as [bold]{escape(user.email or '')}[/]{' (admin)' if admin else ''}.")


@app.command()
def logout(json: Json = False) -> None:
    """Sign out (every session of this user) and forget the saved session."""
    with client() as cb:
        cb.auth.sign_out()
    if json:
        print_json({"signed_out": True, "session_file": str(session_path(settings().url))})
    else:
        console.print("Signed out.")


@app.command()
def whoami(json: Json = False) -> None:
    """Show who is signed in; exit 12 when nobody is."""
    from carbook_sdk import NotAuthenticatedError

    with client() as cb:
        user = cb.auth.current_user()
        if user is None:
            raise NotAuthenticatedError("not signed in")
        admin = cb.auth.is_admin()
    path = session_path(settings().url)
    if json:
        print_json({"id": str(user.id), "email": user.email, "admin": admin, "session_file": str(path)})
        return
    console.print(f"{escape(user.email or '')} ({user.id}){' — admin' if admin else ''}")
    console.print(f"Session: {path}", soft_wrap=True)


@app.command()
def signup(
    email: Annotated[
        str | None,
        typer.Option("--email", "-e", envvar=list(EMAIL_VARS), help="Your email (prompted when missing)."),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password", envvar=list(PASSWORD_VARS), help="Your password (prompted, hidden, when missing)."
        ),
    ] = None,
    json: Json = False,
) -> None:
    """Create an account and sign in (exit 13 when the email is taken)."""
    if email is None:
        email = ask("Email")
    if password is None:
        password = ask("Password", secret=True, confirm=True)
    check_session_writable()
    with client() as cb:
        user = cb.auth.sign_up(email, password)
    if json:
        print_json({"id": str(user.id), "email": user.email, "admin": False})
        return
    console.print(f"Signed up and signed in as [bold]{escape(user.email or '')}[/].")
