"""`carbook race`: N users try to book one car at the same moment; exactly one wins."""

from typing import Annotated

import typer

from .context import car_id as resolve_car
from .context import client, settings
from .output import EXIT_ALREADY_BOOKED, EXIT_FAILED, console, err_console, new_table, print_json


def race(
    car_id: Annotated[
        str,
        typer.Argument(help="The car to race for (published and available): its id, or 8+ characters of it."),
    ],
    clients: Annotated[
        int, typer.Option("--clients", "-n", help="How many users race.", min=2, max=500)
    ] = 20,
    keep_users: Annotated[
        bool,
        typer.Option(
            "--keep-users", help="Keep the users the race makes (by default only the winner's stays)."
        ),
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")] = False,
) -> None:
    """N new users (made with the secret key) book one car at once: one winner, N-1 told
    "Already booked. Be fast next time." — the seed's concurrent-booking check. The users
    are deleted afterwards (also on Ctrl-C), except the winner, whom the booking names."""
    from carbook_sdk.race import run_race

    with client() as cb:  # a prefix names the car as in every other command
        car_id = resolve_car(cb, car_id)
    try:
        result = run_race(car_id, clients, settings=settings(), keep_users=keep_users)
    except KeyboardInterrupt:
        # run_race has cleaned up by now (its clean-up runs on cancellation).
        fate = "are kept (--keep-users)" if keep_users else "were deleted again"
        err_console.print(f"Interrupted: the users this race made {fate}.")
        raise typer.Exit(130) from None
    if json:
        print_json(
            {
                "car_id": result.car_id,
                "winners": len(result.winners),
                "losers": len(result.losers),
                "errors": len(result.errors),
                "results": [a.model_dump() for a in result.attempts],
                "kept_users": list(result.kept_users),
            }
        )
    else:
        table = new_table(title=f"{clients} users race for car {result.car_id}")
        for col in ("user", "outcome", "message", "ms"):
            table.add_column(col, no_wrap=True, justify="right" if col == "ms" else "left")
        for a in sorted(result.attempts, key=lambda a: (a.code != "booked", a.ms)):
            style = "green" if a.code == "booked" else "red" if a.code == "already_booked" else "yellow"
            table.add_row(a.user.split("@")[0], f"[{style}]{a.code}[/]", a.message, f"{a.ms:.1f}")
        console.print(table)
        console.print(
            f"Winners: {len(result.winners)}  Already booked: {len(result.losers)}  Errors: {len(result.errors)}"
        )
        kept = len(result.kept_users)
        console.print(
            f"Users kept: {kept} of {clients}"
            + (" (the winner's: their booking names them)." if kept == len(result.winners) == 1 else ".")
        )
    if len(result.winners) > 1 or result.errors:
        raise typer.Exit(EXIT_FAILED)
    if not result.winners:
        # Nobody won: the car was taken before the race began.
        err_console.print(f"Nobody won: car {result.car_id} was already booked.")
        raise typer.Exit(EXIT_ALREADY_BOOKED)
