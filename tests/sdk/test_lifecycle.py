"""The SDK for the whole booking lifecycle against the real stack: release, cancel, the
admins' booking list, deleting a car with its image, ids by prefix, `as_user` with real
and broken tokens, and a sign-up whose answer was lost (a real delaying proxy)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import threading
import time
import uuid
from typing import Any

import jwt
import pytest

from carbook_sdk import (
    AccessDeniedError,
    AsyncCarbook,
    BookingNotYoursError,
    Carbook,
    CarIsBookedError,
    CarNotBookedError,
    CarNotFoundError,
    InvalidTokenError,
    Money,
    NewCar,
    NotFoundError,
    ValidationError,
)
from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG, carbook_for, unique_email

from ..helpers import stack_db

PASSWORD = "correct-horse-9"


def _user(stack: LocalStack) -> Carbook:
    cb = carbook_for(stack)
    cb.auth.sign_up(unique_email("life"), PASSWORD)
    return cb


def _state(stack: LocalStack) -> tuple[Any, ...]:
    with stack_db(stack) as conn:
        return tuple(
            conn.execute(q).fetchall()
            for q in (
                "select id, booking_status, booked_by, booked_at, updated_at from public.cars order by id",
                "select count(*) from public.audit_logs",
                "select name from storage.objects order by name",
            )
        )


def _car(admin: Carbook) -> str:
    car = admin.cars.create(
        NewCar(make="Kia", model="Carens", year=2024, price=Money.of("1", "INR"), is_published=True), PNG
    )
    return str(car.id)


def test_release_and_cancel_and_the_admins_booking_list(stack: LocalStack, admin: Carbook) -> None:
    car = _car(admin)
    with _user(stack) as driver, _user(stack) as stranger:
        driver.bookings.book(car)
        before = _state(stack)
        # Someone else's booking: refused, nothing changes.
        with pytest.raises(BookingNotYoursError, match="booked by someone else") as info:
            stranger.bookings.cancel(car)
        assert (info.value.status, info.value.retryable) == (403, False)
        with pytest.raises(BookingNotYoursError):
            stranger.bookings.release(car, reason="mine")
        with pytest.raises(ValidationError, match="at most 500"):
            admin.bookings.release(car, reason="x" * 501)
        assert _state(stack) == before

        listed = admin.admin.bookings(limit=1000)
        mine = [b for b in listed.items if str(b.car_id) == car]
        assert [b.booker_email for b in mine] == [driver.auth.current_user().email]  # type: ignore[union-attr]
        with pytest.raises(AccessDeniedError):
            driver.admin.bookings()

        ended = admin.bookings.release(car, reason="payment failed")
        assert (ended.code, ended.reason, str(ended.car_id)) == ("released", "payment failed", car)
        # An available car: nothing to release, nothing changes.
        after = _state(stack)
        with pytest.raises(CarNotBookedError, match="not booked") as info:
            admin.bookings.release(car)
        assert info.value.status == 409
        with pytest.raises(CarNotBookedError):
            driver.bookings.cancel(car)
        assert _state(stack) == after

        stranger.bookings.book(car)  # bookable again
        assert stranger.bookings.cancel(car).code == "cancelled"
    with stack_db(stack) as conn:
        actions = [r[0] for r in conn.execute(
            "select action from public.audit_logs where record_id = %s order by id", (car,)
        )]  # fmt: skip
    assert actions == ["car.insert", "car.booked", "car.released", "car.booked", "car.cancelled"]


def test_admin_bookings_pages_by_keyset(stack: LocalStack, admin: Carbook) -> None:
    cars = [_car(admin) for _ in range(3)]
    with _user(stack) as driver:
        for car in cars:
            driver.bookings.book(car)
    seen: list[str] = []
    page = admin.admin.bookings(limit=2, order="oldest")
    while True:
        seen += [str(b.car_id) for b in page.items]
        if page.next_cursor is None:
            break
        page = admin.admin.bookings(limit=2, order="oldest", cursor=page.next_cursor)
    assert len(seen) == len(set(seen)) and set(cars) <= set(seen)
    with pytest.raises(ValidationError, match="order must be"):
        admin.admin.bookings(order="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="page cursor"):
        admin.admin.bookings(cursor="nonsense")


def test_delete_removes_the_row_then_its_image_and_refuses_a_booked_car(
    stack: LocalStack, admin: Carbook
) -> None:
    free, taken = _car(admin), _car(admin)
    with _user(stack) as driver:
        driver.bookings.book(taken)
        before = _state(stack)
        with pytest.raises(AccessDeniedError, match="for admins only"):
            driver.cars.delete(free)
        with pytest.raises(CarIsBookedError, match="release its booking first") as info:
            admin.cars.delete(taken)
        assert info.value.status == 409
        assert _state(stack) == before
    gone = admin.cars.delete(free)
    assert (str(gone.car.id), gone.image_removed, gone.image_kept) == (free, True, None)
    with stack_db(stack) as conn:
        assert conn.execute("select count(*) from public.cars where id = %s", (free,)).fetchone() == (0,)
        assert conn.execute(
            "select count(*) from storage.objects where name = %s", (gone.car.image_path,)
        ).fetchone() == (0,)
        assert conn.execute(
            "select count(*) from public.audit_logs where record_id = %s and action = 'car.delete'", (free,)
        ).fetchone() == (1,)
    with pytest.raises(CarNotFoundError):
        admin.cars.delete(free)


def test_an_image_another_car_shows_is_kept(stack: LocalStack, admin: Carbook) -> None:
    first = admin.cars.create(NewCar(make="Kia", model="A", year=2024, price=Money.of("1", "INR")), PNG)
    second = admin.cars.create(
        NewCar(make="Kia", model="B", year=2024, price=Money.of("1", "INR")), image_path=first.image_path
    )
    gone = admin.cars.delete(first.id)
    assert not gone.image_removed and gone.image_kept and "another car" in gone.image_kept
    assert admin.images.exists(str(second.image_path))


def test_ids_by_unique_prefix(stack: LocalStack, admin: Carbook) -> None:
    stem = uuid.uuid4().hex[:8]
    ids = [f"{stem}-{i}{i}{i}{i}-4000-8000-000000000001" for i in (1, 2)]
    with stack_db(stack) as conn:
        for cid in ids:
            conn.execute(
                "insert into public.cars (id, make, model, year, image_path, is_published) values (%s, 'K', 'P', 2024, 'x.png', true)",
                (cid,),
            )
    assert str(admin.cars.resolve(f"{stem}-2")) == ids[1]  # 9 characters tell them apart
    assert str(admin.cars.resolve(f"{stem}1")) == ids[0]  # dashes are optional
    assert str(admin.cars.resolve(ids[0].upper())) == ids[0]
    with pytest.raises(ValidationError, match="matches more than one car") as ambiguous:
        admin.cars.resolve(stem)
    assert "\n" not in str(ambiguous.value)
    with pytest.raises(CarNotFoundError, match="no car id starts with"):
        admin.cars.resolve(uuid.uuid4().hex[:10])
    with pytest.raises(ValidationError, match="too short"):
        admin.cars.resolve(stem[:5])
    me = str(admin.auth.current_user().id)  # type: ignore[union-attr]
    assert admin.admin.resolve_user(me[:-1]).email == ADMIN_EMAIL
    if me.startswith("00000000-0000-4000-8000-0000000000"):  # the seed's admin and driver
        with pytest.raises(ValidationError, match="matches 2 users"):
            admin.admin.resolve_user(me[:13])
    with pytest.raises(NotFoundError, match="no user id starts with"):
        admin.admin.resolve_user("ffffffff-ffff")


def _resigned(stack: LocalStack, token: str, **changes: Any) -> str:
    """The token's claims signed again with the stack's own key, changed."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return stack.settings.keys().sign({**claims, **changes})


def test_as_user_acts_with_the_token_and_refuses_broken_ones(stack: LocalStack, admin: Carbook) -> None:
    car = _car(admin)
    with _user(stack) as person:
        token = str(person.auth.access_token())
        me = str(person.auth.current_user().id)  # type: ignore[union-attr]
    with carbook_for(stack) as service:
        bound = service.as_user(token)
        assert bound._http is service._http  # the parent's pool
        assert str(bound.bookings.book(car).booked_by) == me
        assert [str(b.car_id) for b in bound.bookings.mine()] == [car]
        with pytest.raises(Exception, match="not for a client made by as_user"):
            bound.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        bound.close()
        assert service.cars.list_available(limit=1).items is not None  # the pool is still open

        before = _state(stack)
        expired = _resigned(stack, token, exp=int(time.time()) - 60)
        head, body, sig = token.split(".")
        other = base64.urlsafe_b64encode(json.dumps({"sub": str(uuid.uuid4())}).encode()).decode().rstrip("=")
        cases = {
            expired: "has expired",
            f"{head}.{other}.{sig}": "does not verify",
            f"{head}.{body}.{sig[:-4]}AAAA": "does not verify",
            stack.settings.anon_key: "no JWT secret is configured",  # HS256, and no secret here
            "not-a-token": "not an access token",
        }
        for bad, message in cases.items():
            with pytest.raises(InvalidTokenError, match=message) as info:
                service.as_user(bad)
            assert info.value.status == 401 and "\n" not in str(info.value)
    with Carbook(stack.settings.api_url, stack.settings.anon_key, jwt_secret=stack.settings.jwt_secret) as hs:
        with pytest.raises(InvalidTokenError, match="not a user's access token"):
            hs.as_user(stack.settings.anon_key)  # verifies, but it is the project's key, not a user
        forged_hs = jwt.encode({"sub": me, "role": "authenticated", "exp": int(time.time()) + 60}, "x" * 40)
        with pytest.raises(InvalidTokenError, match="does not verify"):
            hs.as_user(forged_hs)
        assert _state(stack) == before


def test_async_as_user_per_request_under_concurrency(stack: LocalStack, admin: Carbook) -> None:
    cars = [_car(admin) for _ in range(5)]
    tokens = []
    for _ in range(5):
        with _user(stack) as person:
            tokens.append(str(person.auth.access_token()))
    s = stack.settings

    async def run() -> list[str]:
        async with AsyncCarbook(s.api_url, s.anon_key) as service:

            async def one(token: str, car: str) -> str:
                user = await service.as_user(token)
                return str((await user.bookings.book(car)).booked_by)

            return await asyncio.gather(*(one(t, c) for t, c in zip(tokens, cars, strict=True)))

    assert len(set(asyncio.run(run()))) == 5


class _SlowSignupProxy:
    """A real TCP proxy to the stack that holds back the answer to the first sign-up for
    longer than the client waits: the request arrives and is served, its answer is lost."""

    def __init__(self, upstream_port: int, hold: float) -> None:
        self.upstream = upstream_port
        self.hold = hold
        self.held = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(client,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream))
        slow = threading.Event()

        def pump(src: socket.socket, dst: socket.socket, inbound: bool) -> None:
            try:
                while data := src.recv(65536):
                    if inbound and b"/auth/v1/signup" in data and not self.held.is_set():
                        self.held.set()
                        slow.set()
                    if not inbound and slow.is_set():
                        time.sleep(self.hold)
                        slow.clear()
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pump, args=(upstream, client, False), daemon=True).start()
        pump(client, upstream, True)

    def close(self) -> None:
        self.closing = True
        self.sock.close()


def test_a_sign_up_whose_answer_was_lost_is_resolved(stack: LocalStack) -> None:
    s = stack.settings
    proxy = _SlowSignupProxy(int(s.api_url.rsplit(":", 1)[1]), hold=3.0)
    email = unique_email("lost")
    try:
        with Carbook(f"http://127.0.0.1:{proxy.port}", s.anon_key, timeout=1.5) as cb:
            user = cb.auth.sign_up(email, PASSWORD)
            assert proxy.held.is_set()  # the answer really was held back past the timeout
            assert user.email == email and cb.auth.current_user() is not None
    finally:
        proxy.close()
    with stack_db(stack) as conn:
        assert conn.execute("select count(*) from auth.users where email = %s", (email,)).fetchone() == (1,)
