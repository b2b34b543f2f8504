"""The SDK against the real local stack: admin and user flows, races, compensation, errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from carbook_sdk import (
    AccessDeniedError,
    AsyncCarbook,
    Booking,
    CarAlreadyBookedError,
    Carbook,
    CarbookConnectionError,
    CarNotFoundError,
    CarNotPublishedError,
    ConfigurationError,
    InvalidCredentialsError,
    Money,
    NewCar,
    NotAuthenticatedError,
    SessionExpiredError,
    UserAlreadyExistsError,
    ValidationError,
)
from carbook_stack.local_postgres import free_port
from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG, async_carbook_for, carbook_for, unique_email

from ..helpers import stack_db

PASSWORD = "correct-horse-9"


@pytest.fixture
def user(stack: LocalStack) -> Iterator[Carbook]:
    with carbook_for(stack) as cb:
        cb.auth.sign_up(unique_email(), PASSWORD)
        yield cb


def _counts(stack: LocalStack) -> tuple[int, ...]:
    with stack_db(stack) as conn:
        row = conn.execute(
            """select (select count(*) from public.cars), (select count(*) from public.audit_logs),
                      (select count(*) from storage.objects)"""
        ).fetchone()
    assert row is not None
    files = len([p for p in (stack.settings.storage_dir / "objects").glob("*") if not p.name.startswith(".")])
    return (*row, files)


def _new_car(**kw: Any) -> NewCar:
    values: dict[str, Any] = {
        "make": "Tata",
        "model": "Altroz",
        "year": 2024,
        "price": Money.of("749999.50", "INR"),
    }
    values.update(kw)
    return NewCar(**values)


def test_admin_flow_end_to_end(admin: Carbook) -> None:
    assert admin.auth.is_admin()
    car = admin.cars.create(_new_car(), PNG)
    assert car.price == Money.of("749999.50", "INR") and not car.is_published
    assert car.image_url is not None
    assert httpx.get(car.image_url).content == PNG

    car = admin.cars.update(car.id, price=Money.of("700000", "INR"))
    assert car.price_in_paise == 70000000
    car = admin.cars.publish(car.id)
    assert car.is_published

    me = admin.auth.current_user()
    assert me is not None
    actions = [(e.action, e.actor_id) for e in reversed(admin.audit.list(car_id=car.id))]
    assert actions == [("car.insert", me.id), ("car.update", me.id), ("car.update", me.id)]


def test_user_flow_and_the_loser_message(admin: Carbook, user: Carbook, stack: LocalStack) -> None:
    hidden = admin.cars.create(_new_car(model="Hidden"), PNG)
    car = admin.cars.publish(admin.cars.create(_new_car(model="Listed"), PNG).id)
    listed = _all_available(user)
    assert car.id in listed and hidden.id not in listed

    booking = user.bookings.book(car.id)
    assert isinstance(booking, Booking) and booking.code == "booked"
    assert [c.id for c in user.cars.mine()] == [car.id]
    assert [b.car_id for b in user.bookings.mine()] == [car.id]
    assert car.id not in _all_available(user)

    again = user.bookings.book(car.id)
    assert again.already_yours and again.booked_at == booking.booked_at

    with carbook_for(stack) as other:
        other.auth.sign_up(unique_email(), PASSWORD)
        with pytest.raises(CarAlreadyBookedError) as err:
            other.bookings.book(car.id)
    assert str(err.value) == "Already booked. Be fast next time."
    assert err.value.car_id == str(car.id)
    with pytest.raises(CarNotPublishedError):
        user.bookings.book(hidden.id)
    with pytest.raises(CarNotFoundError):
        user.bookings.book(uuid.uuid4())


def _all_available(cb: Carbook) -> set[uuid.UUID]:
    seen: set[uuid.UUID] = set()
    cursor = None
    while True:
        page = cb.cars.list_available(limit=7, cursor=cursor)
        assert not seen & {c.id for c in page.items}  # pages never overlap
        seen |= {c.id for c in page.items}
        assert all(c.is_available for c in page.items)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_race_of_50_async_clients(admin: Carbook, stack: LocalStack) -> None:
    car = admin.cars.publish(admin.cars.create(_new_car(model="Raced"), PNG).id)

    async def race() -> list[Any]:
        clients = [async_carbook_for(stack) for _ in range(50)]
        try:
            await asyncio.gather(*(c.auth.sign_up(unique_email("racer"), PASSWORD) for c in clients))

            async def attempt(c: AsyncCarbook) -> Any:
                try:
                    return await c.bookings.book(car.id)
                except CarAlreadyBookedError as exc:
                    return exc

            return await asyncio.gather(*(attempt(c) for c in clients))
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))

    results = asyncio.run(race())
    winners = [r for r in results if isinstance(r, Booking)]
    losers = [r for r in results if isinstance(r, CarAlreadyBookedError)]
    assert (len(winners), len(losers)) == (1, 49)
    with stack_db(stack) as conn:
        row = conn.execute("select booked_by from public.cars where id = %s", (car.id,)).fetchone()
    assert row == (winners[0].booked_by,)


def test_failed_insert_removes_the_uploaded_image(admin: Carbook, stack: LocalStack) -> None:
    """The row insert fails for real (a constraint) after the upload: the image goes again."""
    with stack_db(stack) as conn:
        conn.execute("alter table public.cars add constraint test_no_rejects check (model <> 'RejectMe')")
    try:
        before = _counts(stack)
        with pytest.raises(ValidationError, match="test_no_rejects"):
            admin.cars.create(_new_car(model="RejectMe"), PNG)
        assert _counts(stack) == before
    finally:
        with stack_db(stack) as conn:
            conn.execute("alter table public.cars drop constraint test_no_rejects")


class _FlakyWire(httpx.BaseTransport):
    """TEST DOUBLE for a fault that cannot be caused on demand: a connection that drops.

    The real request still reaches the real server (so the insert really commits) when
    `lose` says so and only its answer is lost; `refuse` requests never leave the client.
    """

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.lose: set[tuple[str, str]] = set()
        self.refuse: set[tuple[str, str]] = set()
        #: Ctrl-C while waiting for the answer (the request did reach the server).
        self.interrupt: set[tuple[str, str]] = set()

    def _matches(self, request: httpx.Request, keys: set[tuple[str, str]]) -> bool:
        # A path ending in "/" stands for every path under it (uploads get fresh names).
        path = request.url.path
        return any(
            m == request.method and (p == path or (p.endswith("/") and path.startswith(p))) for m, p in keys
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._matches(request, self.refuse):
            raise httpx.ConnectError("connection refused (test double)", request=request)
        response = self.inner.handle_request(request)
        if self._matches(request, self.lose | self.interrupt):
            response.read()
            response.close()
            if self._matches(request, self.interrupt):
                raise KeyboardInterrupt
            raise httpx.ReadError("connection dropped before the reply (test double)", request=request)
        return response


def _flaky(cb: Carbook) -> _FlakyWire:
    cb.auth.current_user()  # the session is restored before the wire goes bad
    flaky = _FlakyWire(cb._http._transport)
    cb._http._transport = flaky
    return flaky


@pytest.fixture
def wire(admin: Carbook) -> Iterator[_FlakyWire]:
    real = admin._http._transport
    yield _flaky(admin)
    admin._http._transport = real


def test_a_lost_booking_reply_retried_returns_already_yours(
    admin: Carbook, user: Carbook, stack: LocalStack
) -> None:
    """The booking commits but its answer is lost: the retry is told the car is its own,
    never "already booked", and the car has exactly one booking audit row."""
    car = admin.cars.create(_new_car(model="LostBooking", is_published=True), PNG)
    wire = _flaky(user)
    wire.lose.add(("POST", "/rest/v1/rpc/book_car_atomic"))
    with pytest.raises(CarbookConnectionError):
        user.bookings.book(car.id)
    wire.lose.clear()
    again = user.bookings.book(car.id)
    me = user.auth.current_user()
    assert me is not None
    assert (again.already_yours, again.booked_by) == (True, me.id)
    with stack_db(stack) as conn:
        row = conn.execute(
            """select c.booked_by, (select count(*) from public.audit_logs a
                                     where a.record_id = c.id and a.action = 'car.booked')
                 from public.cars c where c.id = %s""",
            (car.id,),
        ).fetchone()
    assert row == (me.id, 1)


def _car_rows(stack: LocalStack, model: str) -> list[tuple[Any, ...]]:
    with stack_db(stack) as conn:
        return conn.execute(
            """select c.id, c.image_path, o.name is not null from public.cars c
                 left join storage.objects o on o.bucket_id = 'car-images' and o.name = c.image_path
                where c.model = %s""",
            (model,),
        ).fetchall()


def test_a_lost_insert_reply_returns_the_car_it_made(
    admin: Carbook, wire: _FlakyWire, stack: LocalStack
) -> None:
    admin.auth.current_user()  # the session is restored before the wire goes bad
    before = _counts(stack)
    wire.lose.add(("POST", "/rest/v1/cars"))
    car = admin.cars.create(_new_car(model="LostReply"), PNG)
    assert _car_rows(stack, "LostReply") == [(car.id, car.image_path, True)]
    assert _counts(stack) == (before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1)


def test_an_insert_that_never_arrived_removes_its_image(
    admin: Carbook, wire: _FlakyWire, stack: LocalStack
) -> None:
    admin.auth.current_user()
    before = _counts(stack)
    wire.refuse.add(("POST", "/rest/v1/cars"))
    with pytest.raises(CarbookConnectionError):
        admin.cars.create(_new_car(model="NeverArrived"), PNG)
    assert _car_rows(stack, "NeverArrived") == []
    assert _counts(stack) == before


def test_an_unknown_insert_outcome_keeps_the_image(
    admin: Carbook, wire: _FlakyWire, stack: LocalStack
) -> None:
    """The reply is lost and the check cannot reach the server: no car may lose its image."""
    admin.auth.current_user()
    wire.lose.add(("POST", "/rest/v1/cars"))
    wire.refuse.add(("GET", "/rest/v1/cars"))
    with pytest.raises(CarbookConnectionError) as raised:
        admin.cars.create(_new_car(model="UnknownOutcome"), PNG)
    [(car_id, path, has_image)] = _car_rows(stack, "UnknownOutcome")
    assert has_image, "the committed car must keep its image"
    assert f"the car {car_id} may or may not have been created" in str(raised.value.detail)
    assert path in str(raised.value.detail)


def test_a_lost_upload_reply_removes_the_stored_image(
    admin: Carbook, wire: _FlakyWire, stack: LocalStack
) -> None:
    """Storage kept the upload but its answer was lost: no image may stay without a car."""
    before = _counts(stack)
    wire.lose.add(("POST", "/storage/v1/object/car-images/"))
    with pytest.raises(CarbookConnectionError):
        admin.cars.create(_new_car(model="LostUpload"), PNG)
    assert _counts(stack) == before


def test_ctrl_c_during_the_upload_removes_the_stored_image(
    admin: Carbook, wire: _FlakyWire, stack: LocalStack
) -> None:
    before = _counts(stack)
    wire.interrupt.add(("POST", "/storage/v1/object/car-images/"))
    with pytest.raises(KeyboardInterrupt):
        admin.cars.create(_new_car(model="CtrlCUpload"), PNG)
    assert _counts(stack) == before


def test_ctrl_c_after_the_insert_committed_keeps_the_cars_image(
    admin: Carbook, wire: _FlakyWire, stack: LocalStack
) -> None:
    """Stopped while the insert's answer was on its way: the car exists, so its image stays."""
    wire.interrupt.add(("POST", "/rest/v1/cars"))
    with pytest.raises(KeyboardInterrupt):
        admin.cars.create(_new_car(model="CtrlCInsert"), PNG)
    [(_car_id, _path, has_image)] = _car_rows(stack, "CtrlCInsert")
    assert has_image, "the committed car must keep its image"


def test_non_admin_create_uploads_nothing(user: Carbook, stack: LocalStack) -> None:
    before = _counts(stack)
    with pytest.raises(AccessDeniedError, match="adding a car is for admins only"):
        user.cars.create(_new_car(), PNG)
    assert _counts(stack) == before


def test_non_admin_paths_are_refused_and_change_nothing(
    user: Carbook, admin: Carbook, stack: LocalStack
) -> None:
    car = admin.cars.create(_new_car(), PNG)
    before = _counts(stack)
    for call in (
        lambda: user.cars.update(car.id, model="Mine"),
        lambda: user.cars.publish(car.id),
        lambda: user.cars.list_all(),
        lambda: user.audit.list(),
        lambda: user.images.upload(PNG),
    ):
        with pytest.raises(AccessDeniedError):
            call()
    assert _counts(stack) == before


def test_bad_input_with_a_live_admin_changes_nothing(
    admin: Carbook, stack: LocalStack, tmp_path: Path
) -> None:
    fake = tmp_path / "photo.jpg"
    fake.write_text("not an image")
    before = _counts(stack)
    for call in (
        lambda: admin.cars.create(_new_car(), fake),
        lambda: admin.cars.create({"make": "Tata", "model": "X", "year": 2024, "price": "1499"}, PNG),
        lambda: admin.cars.update("nope", model="x"),
        lambda: admin.cars.update(uuid.uuid4(), price=Money.of("-5", "INR")),
        lambda: admin.bookings.book("nope"),
    ):
        with pytest.raises(ValidationError):
            call()
    assert _counts(stack) == before


@pytest.mark.parametrize("key", ["sb_publishable_not-this-projects-key", "not-a-key-at-all"])
def test_a_key_the_project_does_not_know_is_a_configuration_error(stack: LocalStack, key: str) -> None:
    """Not a DatabaseError: nothing is wrong with the database, the set-up names the wrong key."""
    with Carbook(stack.settings.api_url, key) as cb:
        for call in (cb.cars.list_available, lambda: cb.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)):
            with pytest.raises(ConfigurationError, match="the project refused the API key") as refused:
                call()
            assert refused.value.hint is not None and "publishable" in refused.value.hint


def test_error_translation(stack: LocalStack, user: Carbook) -> None:
    s = stack.settings
    with carbook_for(stack) as cb:
        email = unique_email()
        cb.auth.sign_up(email, PASSWORD)
        with pytest.raises(UserAlreadyExistsError):
            cb.auth.sign_up(email, PASSWORD)
        cb.auth.sign_out()
        with pytest.raises(InvalidCredentialsError) as wrong:
            cb.auth.sign_in(email, "wrong-password")
        assert str(wrong.value) == "Invalid email or password."
        with pytest.raises(NotAuthenticatedError):
            cb.bookings.book(uuid.uuid4())

        cb.auth.sign_in(email, PASSWORD)
        with carbook_for(stack) as elsewhere:
            elsewhere.auth.sign_in(email, PASSWORD)
            elsewhere.auth.sign_out()  # global: ends every session of this user
        with pytest.raises(SessionExpiredError):
            cb.auth.refresh()

    dead = f"http://127.0.0.1:{free_port()}"
    with Carbook(dead, s.anon_key, timeout=2) as offline:
        with pytest.raises(CarbookConnectionError) as down:
            offline.cars.list_available()
        assert dead in str(down.value)
        with pytest.raises(CarbookConnectionError):
            offline.auth.sign_in("someone@example.test", PASSWORD)


def test_sync_and_async_clients_agree(stack: LocalStack, admin: Carbook) -> None:
    sync_page = admin.cars.list_available(limit=5)
    sync_car = admin.cars.get(sync_page.items[0].id)

    async def run() -> tuple[Any, Any, bool]:
        async with async_carbook_for(stack) as cb:
            await cb.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
            page = await cb.cars.list_available(limit=5)
            car = await cb.cars.get(page.items[0].id)
            return page, car, await cb.auth.is_admin()

    page, car, is_admin = asyncio.run(run())
    assert [c.id for c in page.items] == [c.id for c in sync_page.items]
    assert page.next_cursor == sync_page.next_cursor
    assert car == sync_car and is_admin is True


def test_session_persists_in_a_0600_file(stack: LocalStack, tmp_path: Path) -> None:
    from carbook_sdk import FileSessionStore

    path = tmp_path / "session.json"
    s = stack.settings
    email = unique_email()
    with Carbook(s.api_url, s.anon_key, session_store=FileSessionStore(path)) as first:
        user = first.auth.sign_up(email, PASSWORD)
    assert path.stat().st_mode & 0o777 == 0o600
    with Carbook(s.api_url, s.anon_key, session_store=FileSessionStore(path)) as second:
        me = second.auth.current_user()
        assert me is not None and me.id == user.id
        second.auth.sign_out()
    assert not path.exists()


def test_admin_service_grants_and_revokes(stack: LocalStack) -> None:
    with carbook_for(stack, service=True) as ops:
        email = unique_email("promoted")
        made = ops.admin.create_user(email, PASSWORD)
        with carbook_for(stack) as cb:
            cb.auth.sign_in(email, PASSWORD)
            assert not cb.auth.is_admin()
            ops.admin.grant(email)
            cb.auth.refresh()  # a new token: the role is looked up again
            assert cb.auth.is_admin()
            ops.admin.revoke(made.id)
            cb.auth.refresh()
            assert not cb.auth.is_admin()


def test_many_tasks_on_a_nearly_expired_session_refresh_once(stack: LocalStack) -> None:
    """Without one refresh at a time, tasks would reuse the single-use refresh token and the
    server would end the session as stolen."""
    import json as _json
    import time as _time

    from supabase_auth.constants import STORAGE_KEY

    email = unique_email("refresh")

    async def run() -> tuple[int, int]:
        async with async_carbook_for(stack) as cb:
            await cb.auth.sign_up(email, PASSWORD)
            store = cb._sb.auth._storage
            session = _json.loads(await store.get_item(STORAGE_KEY))
            session["expires_at"] = int(_time.time()) + 5  # inside the client's 10 s refresh margin
            await store.set_item(STORAGE_KEY, _json.dumps(session))
            pages = await asyncio.gather(*(cb.cars.list_available(limit=1) for _ in range(20)))
            me = await cb.auth.current_user()
            assert me is not None and me.email == email
            return len(pages), len([p for p in pages if p.items])

    done, with_items = asyncio.run(run())
    assert done == with_items == 20
    with stack_db(stack) as conn:
        rotated = conn.execute(
            """select count(*) filter (where revoked), count(*) from auth.refresh_tokens t
                 join auth.users u on u.id = t.user_id where u.email = %s""",
            (email,),
        ).fetchone()
    assert rotated == (1, 2)  # the sign-up token, used once, and its one successor


def test_import_stop_from_progress_ends_after_the_running_row_and_a_rerun_resumes(
    admin: Carbook, stack: LocalStack, tmp_path: Path
) -> None:
    """The sync client: a stop asked for mid-import starts no further row; the rerun resumes."""
    from carbook_sdk.importer import ImportStop

    (tmp_path / "car.png").write_bytes(PNG)
    tag = f"stop-{uuid.uuid4().hex[:8]}"
    rows = [f"{tag}-{i},Kia,Seltos,2024,10.00,INR,car.png" for i in range(5)]
    path = tmp_path / "cars.csv"
    path.write_text("\n".join(["ref,make,model,year,price,currency,image", *rows]) + "\n")
    before = _counts(stack)
    stop = ImportStop()
    report = admin.cars.import_csv(
        path, tmp_path, concurrency=1, progress=lambda *_: stop.request(), stop=stop
    )
    assert (len(report.imported), len(report.not_started), report.interrupted) == (1, 4, True)
    assert [r.ref for r in report.not_started] == [f"{tag}-{i}" for i in range(1, 5)]
    assert _counts(stack) == (before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1)
    again = admin.cars.import_csv(path, tmp_path)
    assert (len(again.imported), len(again.skipped), again.interrupted) == (4, 1, False)
    assert _counts(stack) == (before[0] + 5, before[1] + 5, before[2] + 5, before[3] + 5)
