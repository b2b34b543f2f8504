"""`carbook race`: N users try to book one car at the same moment; exactly one wins."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Annotated, Any

import typer
from rich.table import Table

from .context import async_client, client
from .output import EXIT_ALREADY_BOOKED, EXIT_FAILED, console, err_console, print_json

RACE_PASSWORD_BYTES = 18


async def _race(car_id: str, clients: int) -> list[dict[str, Any]]:
    import asyncio

    from carbook_sdk import CarbookError

    run = uuid.uuid4().hex[:8]
    password = secrets.token_urlsafe(RACE_PASSWORD_BYTES)
    racers = [async_client() for _ in range(clients)]
    try:
        with client() as ops:
            emails = [f"racer-{i:03d}@{run}.race.carbook.invalid" for i in range(clients)]
            for email in emails:
                ops.admin.create_user(email, password)
        await asyncio.gather(*(r.auth.sign_in(e, password) for r, e in zip(racers, emails, strict=True)))
        start = asyncio.Event()

        async def attempt(email: str, cb: Any) -> dict[str, Any]:
            await start.wait()
            began = time.perf_counter()
            try:
                booking = await cb.bookings.book(car_id)
                outcome = {"code": booking.code, "message": booking.message}
            except CarbookError as exc:
                outcome = {"code": exc.code, "message": exc.message}
            return {"user": email, **outcome, "ms": round((time.perf_counter() - began) * 1000, 1)}

        tasks = [asyncio.create_task(attempt(e, r)) for e, r in zip(emails, racers, strict=True)]
        await asyncio.sleep(0)  # every task is waiting on the event
        start.set()
        return list(await asyncio.gather(*tasks))
    finally:
        await asyncio.gather(*(r.aclose() for r in racers))


def race(
    car_id: Annotated[str, typer.Argument(help="The car to race for (published and available).")],
    clients: Annotated[
        int, typer.Option("--clients", "-n", help="How many users race.", min=2, max=500)
    ] = 20,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")] = False,
) -> None:
    """N new users (made with the service_role key) book one car at once: one winner, N-1 told
    "Already booked. Be fast next time." — the seed's concurrent-booking check."""
    import asyncio

    from carbook_sdk.models import parse_car_id

    car = str(parse_car_id(car_id))
    with client() as cb:
        cb.cars.get(car)  # a clear error for an unknown car before any user is made
    results = asyncio.run(_race(car, clients))
    winners = [r for r in results if r["code"] == "booked"]
    losers = [r for r in results if r["code"] == "already_booked"]
    others = [r for r in results if r["code"] not in ("booked", "already_booked")]
    if json:
        print_json(
            {
                "car_id": car,
                "winners": len(winners),
                "losers": len(losers),
                "errors": len(others),
                "results": results,
            }
        )
    else:
        table = Table(title=f"{clients} users race for car {car}")
        for col in ("user", "outcome", "message", "ms"):
            table.add_column(col, no_wrap=True, justify="right" if col == "ms" else "left")
        for r in sorted(results, key=lambda r: (r["code"] != "booked", r["ms"])):
            style = "green" if r["code"] == "booked" else "red" if r["code"] == "already_booked" else "yellow"
            table.add_row(r["user"].split("@")[0], f"[{style}]{r['code']}[/]", r["message"], f"{r['ms']:.1f}")
        console.print(table)
        console.print(f"Winners: {len(winners)}  Already booked: {len(losers)}  Errors: {len(others)}")
    if len(winners) > 1 or others:
        raise typer.Exit(EXIT_FAILED)
    if not winners:
        # Nobody won: the car was taken before the race began.
        err_console.print(f"Nobody won: car {car} was already booked.")
        raise typer.Exit(EXIT_ALREADY_BOOKED)
