"""A booking race on the running local stack, through the plain supabase-py client.

Twenty users (made with the service-role key) sign in over /auth/v1 and call
`rpc('book_car_atomic')` over /rest/v1 at the same moment; the table shows the one
winner. Run by scripts/demo.sh after `carbook stack start`.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from typing import Any

from rich.console import Console
from rich.table import Table
from supabase import ClientOptions, create_client

from carbook_sdk.stack.manager import LocalStack

CLIENTS = int(os.environ.get("CARBOOK_DEMO_CLIENTS", "20"))
PASSWORD = "race-demo-password"
console = Console()


def client(url: str, key: str) -> Any:
    return create_client(url, key, options=ClientOptions(auto_refresh_token=False, persist_session=False))


def main() -> int:
    info = LocalStack.default().info()
    admin = client(info.api_url, info.service_role_key)
    run = uuid.uuid4().hex[:6]
    racers = []
    for i in range(CLIENTS):
        email = f"racer{i:02d}-{run}@demo.test"
        admin.auth.admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True})
        c = client(info.api_url, info.anon_key)
        c.auth.sign_in_with_password({"email": email, "password": PASSWORD})
        racers.append((email, c))

    anon = client(info.api_url, info.anon_key)
    car = anon.table("cars").select("id, make, model").limit(1).execute().data
    if not car:
        console.print("[red]No available car left: run `carbook stack reset` and try again.[/]")
        return 1
    car_id, car_name = car[0]["id"], f"{car[0]['make']} {car[0]['model']}"

    barrier = threading.Barrier(CLIENTS)
    results: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()

    def attempt(email: str, c: Any) -> None:
        barrier.wait()
        data = c.rpc("book_car_atomic", {"car_id": car_id}).execute().data
        with lock:
            results.append((email, data))

    threads = [threading.Thread(target=attempt, args=r) for r in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    table = Table(title=f"{CLIENTS} users race for {car_name} ({car_id})")
    for col in ("user", "outcome", "message"):
        table.add_column(col, no_wrap=True)
    for email, r in sorted(results, key=lambda x: x[1]["code"] != "booked"):
        style = "green" if r["success"] else "red"
        table.add_row(email, f"[{style}]{r['code']}[/]", r["message"])
    console.print(table)
    winners = sum(1 for _, r in results if r["code"] == "booked")
    console.print(f"Winners: {winners}  Losers: {len(results) - winners}")
    return 0 if winners == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
