"""Faults for real: PostgREST killed, PostgreSQL crashed, uploads cut off mid-stream.

Whatever breaks, a car is booked at most once, every booking has exactly one audit row,
every call ends (in a result or a CarbookConnectionError, within its timeout), and the
winner's retry gets its booking back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from carbook_sdk import (
    AsyncCarbook,
    Booking,
    CarAlreadyBookedError,
    CarbookConnectionError,
)
from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG, supabase_client

from ..helpers import make_cars, make_users, stack_db

PASSWORD = "fault-password-1"
TIMEOUT = 5.0


def _users_and_cars(stack: LocalStack, n_users: int, n_cars: int) -> tuple[list[str], list[str]]:
    tag = f"fault-{uuid.uuid4().hex[:8]}"
    users = make_users(stack, n_users, tag, password=PASSWORD)
    return [email for _, email in users], make_cars(stack, n_cars, tag)


def _race_through_a_fault(stack: LocalStack, break_it: Callable[[], None]) -> None:
    emails, cars = _users_and_cars(stack, 25, 50)
    s = stack.settings
    attempts = [(car, (i * 7 + k) % len(emails)) for i, car in enumerate(cars) for k in range(10)]

    async def run() -> tuple[list[tuple[str, int, Any, float]], list[AsyncCarbook]]:
        clients = [AsyncCarbook(s.api_url, s.anon_key, timeout=TIMEOUT) for _ in emails]
        await asyncio.gather(*(c.auth.sign_in(e, PASSWORD) for c, e in zip(clients, emails, strict=True)))
        gate = asyncio.Semaphore(16)
        done = 0
        # The later attempts wait for the fault, so it always lands mid-race, however fast
        # the machine gets through the first ones.
        broken = asyncio.Event()

        async def one(i: int, car: str, user: int) -> tuple[str, int, Any, float]:
            nonlocal done
            if i >= 150:
                await broken.wait()
            async with gate:
                began = time.monotonic()
                try:
                    outcome: Any = await clients[user].bookings.book(car)
                except (CarAlreadyBookedError, CarbookConnectionError) as exc:
                    outcome = exc
                done += 1
                return car, user, outcome, time.monotonic() - began

        async def saboteur() -> None:
            while done < 100:
                await asyncio.sleep(0.01)
            try:
                await asyncio.to_thread(break_it)
            finally:
                broken.set()
            status = await asyncio.to_thread(stack.status)
            assert not status.healthy  # `carbook stack status` reports the dead part
            await asyncio.sleep(0.5)
            await asyncio.to_thread(stack.start)  # brings back whatever is down, data kept

        results, _ = await asyncio.gather(
            asyncio.gather(*(one(i, c, u) for i, (c, u) in enumerate(attempts))), saboteur()
        )
        return list(results), clients

    async def check_and_retry() -> None:
        results, clients = await run()
        try:
            assert len(results) == 500
            assert all(elapsed < TIMEOUT * 3 for *_, elapsed in results)  # every call ended, none hung
            failed = [
                (car, user)
                for car, user, outcome, _ in results
                if isinstance(outcome, CarbookConnectionError)
            ]
            assert failed, "the fault hit no call: it came too late to test anything"
            with stack_db(stack) as conn:
                holders = dict(
                    conn.execute("select id::text, booked_by from public.cars where id = any(%s)", (cars,))
                )
                audit = dict(
                    conn.execute(
                        """select record_id::text, count(*) from public.audit_logs
                            where action = 'car.booked' and record_id = any(%s::uuid[]) group by 1""",
                        (cars,),
                    )
                )
                ids = {
                    e: str(i)
                    for e, i in conn.execute(
                        "select email, id from auth.users where email = any(%s)", (emails,)
                    )
                }
            for car in cars:
                assert audit.get(car, 0) == (1 if holders[car] else 0), car
            winners = {car: emails[user] for car, user, outcome, _ in results if isinstance(outcome, Booking)}
            for car, email in winners.items():
                assert str(holders[car]) == ids[email]
            # Every failed call, retried: the holder gets its booking back, everyone else is told.
            for car, user in failed:
                try:
                    again = await clients[user].bookings.book(car)
                except CarAlreadyBookedError:
                    assert str(holders[car]) != ids[emails[user]] or holders[car] is None
                    continue
                if holders[car] is not None and str(holders[car]) == ids[emails[user]]:
                    assert again.already_yours
                else:
                    assert holders[car] is None and again.code == "booked"
                    holders[car] = again.booked_by
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))

    asyncio.run(check_and_retry())
    assert stack.status().healthy


def test_postgrest_killed_mid_race(own_stack: LocalStack) -> None:
    own_stack.start()

    def kill_postgrest() -> None:
        pid = own_stack.postgrest.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)

    _race_through_a_fault(own_stack, kill_postgrest)


def test_postgresql_crashed_mid_race(own_stack: LocalStack) -> None:
    # A crash keeps every commit only with durable settings (fsync, synchronous commit),
    # which is what `carbook stack start` runs; the test stacks trade them for speed.
    own_stack.fast = False
    own_stack.start()
    assert own_stack.postgres.fast is False
    _race_through_a_fault(own_stack, own_stack.postgres.kill)


# Uploads cut off -----------------------------------------------------------------------------
def _storage(stack: LocalStack) -> tuple[Any, ...]:
    with stack_db(stack) as conn:
        rows = conn.execute("select bucket_id, name from storage.objects order by 1, 2").fetchall()
    return rows, sorted(p.name for p in (stack.settings.storage_dir / "objects").glob("*"))


def _admin_token(stack: LocalStack) -> str:
    info = stack.info()
    client = supabase_client(info.api_url, info.anon_key)
    session = client.auth.sign_in_with_password({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).session
    assert session is not None
    return str(session.access_token)


def test_an_upload_cut_off_mid_stream_leaves_nothing(stack: LocalStack) -> None:
    s = stack.settings
    token = _admin_token(stack)
    before = _storage(stack)
    head = (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PNG
    )
    request = (
        f"POST /storage/v1/object/car-images/cars/{uuid.uuid4().hex}.png HTTP/1.1\r\n"
        f"Host: {s.host}:{s.api_port}\r\napikey: {s.anon_key}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 2000000\r\n\r\n"
    ).encode() + head
    partial = s.storage_dir / "objects"
    with socket.create_connection((s.host, s.api_port)) as sock:
        sock.sendall(request)
        sock.sendall(b"\0" * 200_000)  # a tenth of what was announced, then the line drops
        # Drop it only once the server is writing the partial file, so the check below
        # cannot pass merely because the server had not started yet.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not list(partial.glob(".upload-*")):
            time.sleep(0.02)
        assert list(partial.glob(".upload-*")), "the server never started writing the upload"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _storage(stack) != before:
        time.sleep(0.05)
    assert _storage(stack) == before  # no row, no file, no temporary file


def test_an_oversize_upload_streamed_without_length_is_refused(stack: LocalStack) -> None:
    s = stack.settings
    token = _admin_token(stack)
    before = _storage(stack)
    sent = 0

    def body() -> Any:
        nonlocal sent
        yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
        yield PNG
        chunk = b"\0" * 65536
        for _ in range(200):  # 12.5 MiB announced nowhere: chunked transfer
            sent += len(chunk)
            yield chunk
            time.sleep(0.002)  # slow enough for the watcher below to see the file grow
        yield b"\r\n--B--\r\n"

    # Watch the server's temporary file: the bytes must go to disk as they arrive (not
    # into memory first), and stop at the bucket's limit.
    import threading

    largest = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal largest
        folder = s.storage_dir / "objects"
        while not done.is_set():
            for temp in folder.glob(".upload-*"):
                with contextlib.suppress(OSError):
                    largest = max(largest, temp.stat().st_size)
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        reply = httpx.post(
            f"{s.api_url}/storage/v1/object/car-images/cars/{uuid.uuid4().hex}.png",
            headers={
                "apikey": s.anon_key,
                "Authorization": f"Bearer {token}",
                "Content-Type": "multipart/form-data; boundary=B",
            },
            content=body(),
            timeout=30,
        )
    except httpx.TransportError:
        reply = None  # the server may close the line as soon as it has refused
    finally:
        done.set()
        watcher.join()
    if reply is not None:
        assert reply.status_code == 400
        assert reply.json()["statusCode"] == "413"
    limit = 5 * 1024 * 1024
    assert sent > 2 * limit  # far more than the limit was offered
    assert 1024 * 1024 < largest <= limit + 65536, largest  # streamed to disk, cut at the limit
    assert _storage(stack) == before


BAD_UPLOADS = {
    "no content": ("x.png", b"", "image/png"),
    "type not allowed": ("x.gif", b"GIF89a", "image/gif"),
    "text named and declared as a jpeg": ("car.jpg", b"<?php system($_GET['c']); ?>", "image/jpeg"),
    "png bytes declared as webp": ("x.webp", b"\x89PNG\r\n\x1a\n" + bytes(32), "image/webp"),
}


@pytest.mark.parametrize("reason", sorted(BAD_UPLOADS))
def test_bad_uploads_leave_nothing(stack: LocalStack, reason: str) -> None:
    """Raw HTTP, past the SDK's own checks: the gateway refuses what is not the image it
    claims to be (stricter than hosted Storage, which trusts the declared type)."""
    s = stack.settings
    token = _admin_token(stack)
    before = _storage(stack)
    reply = httpx.post(
        f"{s.api_url}/storage/v1/object/car-images/cars/{uuid.uuid4().hex}.png",
        headers={"apikey": s.anon_key, "Authorization": f"Bearer {token}"},
        files={"file": BAD_UPLOADS[reason]},
    )
    assert reply.status_code == 400 and reply.json()["statusCode"] == "415", reply.text
    assert _storage(stack) == before


def test_an_upload_with_endless_form_fields_is_refused(stack: LocalStack) -> None:
    s = stack.settings
    token = _admin_token(stack)
    before = _storage(stack)
    parts = b"".join(
        f'--B\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nvalue\r\n'.encode() for i in range(100)
    )
    body = parts + b'--B\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
    body += b"Content-Type: image/png\r\n\r\n" + PNG + b"\r\n--B--\r\n"
    reply = httpx.post(
        f"{s.api_url}/storage/v1/object/car-images/cars/{uuid.uuid4().hex}.png",
        headers={
            "apikey": s.anon_key,
            "Authorization": f"Bearer {token}",
            "Content-Type": "multipart/form-data; boundary=B",
        },
        content=body,
    )
    assert reply.status_code == 400 and reply.json()["message"] == "too many form fields"
    assert _storage(stack) == before
