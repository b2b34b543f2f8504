"""`carbook admin`: create users, grant and revoke the admin role (needs the secret key)."""

from typing import Annotated

import typer

from carbook_sdk.env import PASSWORD_VARS

from .context import ask, client
from .output import console, escape, print_json

app = typer.Typer(
    help="Create users, grant and revoke the admin role (with the secret key).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
Email = Annotated[
    str,
    typer.Argument(help="The user's email address, id, or a unique start of the id (8 characters or more)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]


def _set_admin(email: str, admin: bool, json: bool) -> None:
    with client() as cb:
        user = cb.admin.resolve_user(email)
        (cb.admin.grant if admin else cb.admin.revoke)(user.id)
    if json:
        print_json({"id": str(user.id), "email": user.email, "admin": admin})
    else:
        who = escape(user.email or str(user.id))
        console.print(f"{who} is now an admin." if admin else f"{who} is no longer an admin.")


@app.command()
def grant(email: Email, json: Json = False) -> None:
    """Make a user an admin (harmless when they already are)."""
    _set_admin(email, True, json)


@app.command()
def revoke(email: Email, json: Json = False) -> None:
    """Take the admin role away from a user (harmless when they are not one)."""
    _set_admin(email, False, json)


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Option("--email", "-e", help="The new user's email address.")],
    password: Annotated[
        str | None,
        typer.Option(
            "--password", envvar=list(PASSWORD_VARS), help="Their password (prompted, hidden, when missing)."
        ),
    ] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="Make them an admin too (the first admin, say).")
    ] = False,
    json: Json = False,
) -> None:
    """Create a confirmed user with the secret key, optionally an admin: how a fresh
    project gets its first admin from the CLI alone."""
    if password is None:
        password = ask("Password", secret=True, confirm=True)
    with client() as cb:
        user = cb.admin.create_user(email, password, admin=admin)
    if json:
        print_json({"id": str(user.id), "email": user.email, "admin": admin})
    else:
        console.print(f"Created {escape(user.email or '')} ({user.id}){', an admin' if admin else ''}.")
