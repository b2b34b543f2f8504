"""The app's connection pool run dry for real: every pooled connection of Auth and Storage
held by a sign-in that waits on a row lock the test holds. A request that finds no free
connection waits for one; past the app's wait it is a 503 in the service's own shape
with ``Retry-After`` saying the service is busy, never "database unavailable" (the
database is up all the while); once the lock goes every waiting request is served."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import httpx

from carbook_stack.manager import LocalStack
from carbook_stack.service import POOL_WAIT
from carbook_stack.testing import PASSWORD

from ..helpers import make_users, stack_db

#: The app's pool (carbook_stack.app): this many sign-ins hold every connection.
POOL_SIZE = 20


def _sign_in(stack: LocalStack, email: str) -> httpx.Response:
    s = stack.settings
    return httpx.post(
        f"{s.api_url}/auth/v1/token",
        params={"grant_type": "password"},
        headers={"apikey": s.publishable_key},
        json={"email": email, "password": PASSWORD},
        timeout=POOL_WAIT + 30,
    )


def _list(stack: LocalStack) -> httpx.Response:
    s = stack.settings
    return httpx.post(
        f"{s.api_url}/storage/v1/object/list/car-images",
        headers={"apikey": s.publishable_key},
        json={"prefix": "", "limit": 1},
        timeout=POOL_WAIT + 30,
    )


def _waiting_on_locks(stack: LocalStack) -> int:
    with stack_db(stack) as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and backend_type = 'client backend'"
        ).fetchone()
        assert row is not None
        return int(row[0])


def test_a_dry_pool_makes_requests_wait_then_answers_busy_with_retry_after_never_unavailable(
    stack: LocalStack,
) -> None:
    tag = f"pool-{uuid.uuid4().hex[:6]}"
    (held_id, held_email), (_, other_email) = make_users(stack, 2, tag)
    with stack_db(stack) as lock, ThreadPoolExecutor(max_workers=POOL_SIZE + 4) as pool:
        lock.execute("begin")
        lock.execute("select 1 from auth.users where id = %s for update", (held_id,))
        holders: list[Future[httpx.Response]] = [
            pool.submit(_sign_in, stack, held_email) for _ in range(POOL_SIZE)
        ]
        deadline = time.monotonic() + 30
        while _waiting_on_locks(stack) < POOL_SIZE and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _waiting_on_locks(stack) == POOL_SIZE, "the sign-ins did not take every pooled connection"

        started = time.monotonic()
        gave_up = [pool.submit(_sign_in, stack, other_email), pool.submit(_list, stack)]
        refused = [f.result() for f in gave_up]
        waited = time.monotonic() - started

        # A request that comes now and finds a connection freed in time is served.
        patient: list[Future[httpx.Response]] = [pool.submit(_sign_in, stack, other_email)]
        time.sleep(1.0)
        lock.execute("rollback")
        served = [f.result() for f in patient + holders]

    auth, storage = refused
    assert waited >= POOL_WAIT - 1  # they waited for a connection before giving up
    assert auth.status_code == 503 and auth.headers["retry-after"] == "1"
    assert auth.json()["msg"] == "The service is busy, please try again"
    assert storage.status_code == 503 and storage.headers["retry-after"] == "1"
    assert storage.json()["message"] == "The service is busy, please try again"
    for reply in refused:  # the database is up: no word of it
        assert "database" not in reply.text.lower()
    assert [r.status_code for r in served] == [200] * (POOL_SIZE + 1), [r.text[:100] for r in served]
    # And nothing was left waiting or broken: the next request is served at once.
    assert _sign_in(stack, other_email).status_code == 200
