"""The live listing in a real browser: examples/web joined to the private Realtime topic
``cars:availability`` keeps an open page current, with no reload, as cars are booked,
released, published, unpublished and re-priced elsewhere (the SDK, SQL, other pages).

Each page records what it heard (the page's ``carbook:availability`` DOM events) and
every car it ever drew, so a test can count transitions and say "never", not only "now".
"""

from __future__ import annotations

import functools
import re
import time
import uuid
from typing import Any

from playwright.sync_api import BrowserContext, Page, Route, expect

from carbook_sdk import Money
from carbook_stack.manager import LocalStack
from tests.helpers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    carbook_for,
    make_users,
    stack_db,
    temporary_stack,
)

from .conftest import add_car as add_browser_car
from .conftest import open_app

#: What a visitor may know of a change; the trigger sends this and nothing else.
PUBLIC_KEYS = {"id", "kind", "listed", "status", "price_in_paise", "currency", "version"}

# Runs in every page of the context before the app: the changes the page heard (with
# whether it applied them) and the id of every car it ever drew in the listing.
#: The cars these tests make are all "Live" ones (the page's titles say so).
add_car = functools.partial(add_browser_car, make="Live")

RECORD = """
window.__events = []
window.__drawn = []
document.addEventListener('carbook:availability', (e) => {
  window.__events.push({ kind: e.detail.kind, id: e.detail.change.id, applied: e.detail.applied,
                         payload: e.detail.change })
})
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) {
    if (n.nodeType === 1 && n.matches('li[data-car-id]') && n.closest('#cars')) window.__drawn.push(n.dataset.carId)
  }
}).observe(document, { childList: true, subtree: true })
"""


def open_live(ctx: BrowserContext, origin: str, stack: LocalStack) -> Page:
    """The app, once it has joined the topic and read the listing after the join; with a
    marker that a reload would wipe."""
    ctx.add_init_script(RECORD)
    page = open_app(ctx, origin, stack)
    expect(page.locator("#live")).to_have_attribute("data-live", "joined")
    page.evaluate("window.__marker = 'never reloaded'")
    return page


def sign_in(page: Page, email: str, password: str) -> None:
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_function("email => document.body.dataset.user === email", arg=email)


def car(page: Page, car_id: str, within: str = "#cars") -> Any:
    return page.locator(f"{within} li[data-car-id='{car_id}']")


def heard(page: Page, car_id: str, kind: str | None = None, *, applied: bool | None = None) -> list[Any]:
    events: list[dict[str, Any]] = page.evaluate("window.__events")
    return [
        e
        for e in events
        if e["id"] == car_id
        and (kind is None or e["kind"] == kind)
        and (applied is None or e["applied"] is applied)
    ]


def wait_heard(page: Page, car_id: str, kind: str, count: int = 1) -> None:
    page.wait_for_function(
        "([id, kind, n]) => window.__events.filter(e => e.id === id && e.kind === kind).length >= n",
        arg=[car_id, kind, count],
    )


def not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__marker") == "never reloaded"


def settle(stack: LocalStack, pages: list[Page]) -> None:
    """Until every page heard a change made after everything before it: one socket
    delivers a topic's messages in commit order, so whatever was coming has come."""
    sentinel = add_car(stack, f"sentinel-{uuid.uuid4().hex[:8]}")
    for page in pages:
        wait_heard(page, sentinel, "published")


def test_a_car_booked_elsewhere_leaves_an_open_page(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    car_id = add_car(stack, f"booked-{tag}")
    kept = add_car(stack, f"kept-{tag}")
    ((_, email),) = make_users(stack, 1, f"live-{tag}")
    page = open_live(new_context(), web_origin, stack)
    expect(car(page, car_id)).to_have_count(1)

    with carbook_for(stack) as cb:
        cb.auth.sign_in(email, PASSWORD)
        cb.bookings.book(car_id)
    expect(car(page, car_id)).to_have_count(0)
    expect(car(page, kept)).to_have_count(1)
    not_reloaded(page)
    assert [e["applied"] for e in heard(page, car_id, "booked")] == [True]


def test_a_car_an_admin_publishes_comes_in_with_its_make_model_and_price(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    by_sdk = add_car(stack, f"sdk-{tag}", published=False, price=250000)
    page = open_live(new_context(), web_origin, stack)
    expect(car(page, by_sdk)).to_have_count(0)

    with carbook_for(stack) as cb:
        cb.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        cb.cars.publish(by_sdk)
    expect(car(page, by_sdk).locator(".title")).to_have_text(f"Live sdk-{tag} (2024)")
    expect(car(page, by_sdk).locator(".price")).to_have_text("₹2,500.00")
    expect(car(page, by_sdk).locator("button.book")).to_be_enabled()

    # A car inserted published by plain SQL comes in too, and above the older ones (the
    # listing's order, newest first).
    by_sql = add_car(stack, f"sql-{tag}", price=99)
    expect(car(page, by_sql).locator(".title")).to_have_text(f"Live sql-{tag} (2024)")
    expect(car(page, by_sql).locator(".price")).to_have_text("₹0.99")
    first = page.eval_on_selector("#cars li", "li => li.dataset.carId")
    assert first == by_sql
    not_reloaded(page)
    assert page.evaluate("window.__drawn").count(by_sdk) == 1


def test_a_released_or_cancelled_booking_brings_the_car_back(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    released, cancelled = add_car(stack, f"released-{tag}"), add_car(stack, f"cancelled-{tag}")
    ((_, email),) = make_users(stack, 1, f"back-{tag}")
    page = open_live(new_context(), web_origin, stack)
    with carbook_for(stack) as user, carbook_for(stack) as admin:
        user.auth.sign_in(email, PASSWORD)
        admin.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        user.bookings.book(released)
        user.bookings.book(cancelled)
        expect(car(page, released)).to_have_count(0)
        expect(car(page, cancelled)).to_have_count(0)

        admin.bookings.release(released, reason="the driver called")
        expect(car(page, released).locator(".title")).to_have_text(f"Live released-{tag} (2024)")
        user.bookings.cancel(cancelled)
        expect(car(page, cancelled).locator(".title")).to_have_text(f"Live cancelled-{tag} (2024)")
    not_reloaded(page)
    assert [e["kind"] for e in heard(page, released)] == ["booked", "released"]
    assert [e["kind"] for e in heard(page, cancelled)] == ["booked", "released"]


def test_a_price_change_shows_at_once(stack: LocalStack, web_origin: str, new_context: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    car_id = add_car(stack, f"price-{tag}", price=149900)
    page = open_live(new_context(), web_origin, stack)
    expect(car(page, car_id).locator(".price")).to_have_text("₹1,499.00")
    drawn = page.evaluate("window.__drawn").count(car_id)

    with carbook_for(stack) as cb:
        cb.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        cb.cars.update(car_id, price=Money.of("1799.50", "INR"))
    expect(car(page, car_id).locator(".price")).to_have_text("₹1,799.50")
    # Twice within a moment: the last one stays.
    with stack_db(stack) as conn:
        conn.execute("update public.cars set price_in_paise = 100000 where id = %s", (car_id,))
        conn.execute("update public.cars set price_in_paise = 120000 where id = %s", (car_id,))
    wait_heard(page, car_id, "price_changed", 3)
    expect(car(page, car_id).locator(".price")).to_have_text("₹1,200.00")
    not_reloaded(page)
    # The price changed in place: the car was not drawn again.
    assert page.evaluate("window.__drawn").count(car_id) == drawn


def test_changes_heard_while_the_listing_is_read_wait_for_it_and_duplicates_drop(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    """The consistent start, with the page's read of the listing held on its way back:
    a car re-priced before the read was answered (the read shows it: its event is a
    duplicate, by version) and one booked after (the read shows it available: its event,
    heard meanwhile, must still take it out)."""
    tag = uuid.uuid4().hex[:8]
    repriced, booked = add_car(stack, f"repriced-{tag}"), add_car(stack, f"booked-{tag}")
    ((_, email),) = make_users(stack, 1, f"held-{tag}")
    page = open_live(new_context(), web_origin, stack)
    read: list[Any] = []

    def held_read(route: Route) -> None:
        with stack_db(stack) as conn:
            conn.execute("update public.cars set price_in_paise = 777700 where id = %s", (repriced,))
        response = route.fetch()
        read.extend(response.json())
        with carbook_for(stack) as cb:
            cb.auth.sign_in(email, PASSWORD)
            cb.bookings.book(booked)
        time.sleep(0.5)  # not an assertion: the broadcasts reach the page before its read does
        route.fulfill(response=response)

    page.route(re.compile(r"/rest/v1/cars\?.*order=created_at"), held_read, times=1)
    page.evaluate("loadCars()")  # what a rejoin does
    assert {c["id"]: c["price_in_paise"] for c in read if c["id"] in (repriced, booked)} == {
        repriced: 777700,
        booked: 149900,
    }
    expect(car(page, booked)).to_have_count(0)
    expect(car(page, repriced).locator(".price")).to_have_text("₹7,777.00")
    assert [e["applied"] for e in heard(page, booked)] == [True]
    assert [e["applied"] for e in heard(page, repriced)] == [False]
    not_reloaded(page)


def test_pages_racing_for_a_car_see_one_winner_and_one_booking(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    car_id = add_car(stack, f"race-{tag}")
    users = make_users(stack, 5, f"race-{tag}")
    bookers = [open_live(new_context(), web_origin, stack) for _ in users]
    for page, (_, email) in zip(bookers, users, strict=True):
        sign_in(page, email, PASSWORD)
        expect(car(page, car_id)).to_have_count(1)
    watcher = open_live(new_context(), web_origin, stack)
    pages = [*bookers, watcher]

    # Every page clicks at one instant of the browser's clock. The button is taken now:
    # the winner's booking may take the car out of a slower page before its click runs.
    at = page_clock(watcher) + 1000
    for page in bookers:
        page.evaluate(
            """([id, at]) => { const b = document.querySelector(`#cars li[data-car-id='${id}'] button`)
                               setTimeout(() => b.click(), at - Date.now()) }""",
            [car_id, at],
        )
    outcomes = []
    for page in bookers:
        page.wait_for_function(
            "() => /^(Booked: |Already booked\\. )/.test(document.getElementById('message').textContent)"
        )
        outcomes.append(page.locator("#message").text_content())
    assert sorted(outcomes) == sorted(
        [f"Booked: the Live race-{tag} is yours."] + ["Already booked. Be fast next time."] * 4
    ), outcomes

    for page in pages:
        expect(car(page, car_id)).to_have_count(0)
    settle(stack, pages)
    for page in pages:
        not_reloaded(page)
        booked = heard(page, car_id, "booked")
        assert len(booked) == 1 and booked[0]["applied"], booked
        assert heard(page, car_id, applied=True) == booked
    winner = bookers[outcomes.index(f"Booked: the Live race-{tag} is yours.")]
    expect(car(winner, car_id, "#my-cars")).to_have_count(1)
    with stack_db(stack) as conn:
        audit = conn.execute(
            "select count(*) from public.audit_logs where record_id = %s and action = 'car.booked'", (car_id,)
        ).fetchone()
    assert audit == (1,)


def page_clock(page: Page) -> float:
    return float(page.evaluate("Date.now()"))


def test_an_unpublished_car_never_appears_and_no_change_says_who_booked(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    listed = add_car(stack, f"listed-{tag}")
    ((user_id, email),) = make_users(stack, 1, f"private-{tag}")
    page = open_live(new_context(), web_origin, stack)

    # Made hidden, re-priced, and booked while hidden: nothing a visitor may know changed.
    hidden = add_car(stack, f"hidden-{tag}", published=False)
    with stack_db(stack) as conn:
        conn.execute("update public.cars set price_in_paise = 5 where id = %s", (hidden,))
        conn.execute(
            "update public.cars set booking_status = 'booked', booked_by = %s, booked_at = now() where id = %s",
            (user_id, hidden),
        )
        conn.execute("update public.cars set is_published = true where id = %s", (hidden,))
    # A listed car booked, then unpublished after its release: it leaves, twice.
    with carbook_for(stack) as user, carbook_for(stack) as admin:
        user.auth.sign_in(email, PASSWORD)
        admin.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        user.bookings.book(listed)
        admin.bookings.release(listed)
        admin.cars.unpublish(listed)
    settle(stack, [page])

    assert heard(page, hidden) == []
    assert hidden not in page.evaluate("window.__drawn")
    expect(car(page, hidden)).to_have_count(0)
    expect(car(page, listed)).to_have_count(0)
    changes = heard(page, listed)
    assert [e["kind"] for e in changes] == ["booked", "released", "unpublished"]
    for change in changes:
        assert set(change["payload"]) == PUBLIC_KEYS, change["payload"]
        assert user_id not in str(change["payload"]) and email not in str(change["payload"])
    not_reloaded(page)


def test_a_page_that_lost_realtime_reads_again_when_it_rejoins(web_origin: str, new_context: Any) -> None:
    """What changed while Realtime was away (its broadcast went to nobody) shows after
    supabase-js's own rejoin, still without a reload."""
    with temporary_stack("carbook-live-") as own:
        tag = uuid.uuid4().hex[:8]
        car_id = add_car(own, f"away-{tag}")
        ((_, email),) = make_users(own, 1, f"away-{tag}")
        page = open_live(new_context(), web_origin, own)
        assert page.evaluate("document.body.dataset.liveJoins") == "1"

        own.realtime.stop()
        expect(page.locator("#live")).to_have_attribute("data-live", "lost")
        with carbook_for(own) as cb:
            cb.auth.sign_in(email, PASSWORD)
            cb.bookings.book(car_id)
        # The broadcast went out while nobody could hear it.
        with stack_db(own) as conn:
            sent = conn.execute(
                "select count(*) from realtime.messages where topic = 'cars:availability'"
                " and event = 'booked' and payload ->> 'id' = %s",
                (car_id,),
            ).fetchone()
        assert sent == (1,)
        expect(car(page, car_id)).to_have_count(1)

        own.realtime.start()
        page.wait_for_function("() => document.body.dataset.liveJoins === '2'", timeout=30_000)
        expect(page.locator("#live")).to_have_attribute("data-live", "joined")
        expect(car(page, car_id)).to_have_count(0)
        not_reloaded(page)
        assert heard(page, car_id) == []


def test_signing_in_and_out_keeps_the_page_hearing(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    """supabase-js hands the channel the session's token on sign-in and the publishable
    key's on sign-out; the channel stays joined through both."""
    tag = uuid.uuid4().hex[:8]
    first, second = add_car(stack, f"in-{tag}"), add_car(stack, f"out-{tag}")
    (_, email), (_, booker) = make_users(stack, 2, f"session-{tag}")
    page = open_live(new_context(), web_origin, stack)
    sign_in(page, email, PASSWORD)
    token = page.evaluate("JSON.parse(localStorage.getItem('sb-127-auth-token')).access_token")
    assert page.evaluate("db.realtime.accessTokenValue") == token
    with carbook_for(stack) as cb:
        cb.auth.sign_in(booker, PASSWORD)
        cb.bookings.book(first)
        expect(car(page, first)).to_have_count(0)
        page.click("#sign-out")
        expect(page.locator("#who")).to_have_text("Not signed in")
        cb.bookings.book(second)
        expect(car(page, second)).to_have_count(0)
    expect(page.locator("#live")).to_have_attribute("data-live", "joined")
    assert page.evaluate("document.body.dataset.liveJoins") == "1"
    not_reloaded(page)


def test_a_channel_closed_for_an_expired_token_is_joined_again_with_a_fresh_one(
    web_origin: str, new_context: Any
) -> None:
    """Realtime closes a channel whose token expires (supabase-js refreshes a 4-second token
    only at its next 30-second tick); Phoenix never rejoins a closed channel, so the page
    joins a new one, with the refreshed token, and reads the listing again."""
    with temporary_stack("carbook-live-", jwt_expiry=4) as own:
        tag = uuid.uuid4().hex[:8]
        car_id = add_car(own, f"expiry-{tag}")
        (_, email), (_, booker) = make_users(own, 2, f"expiry-{tag}")
        page = open_live(new_context(), web_origin, own)
        sign_in(page, email, PASSWORD)
        token = page.evaluate("db.realtime.accessTokenValue")
        page.wait_for_function("() => Number(document.body.dataset.liveJoins) >= 2", timeout=20_000)
        expect(page.locator("#live")).to_have_attribute("data-live", "joined")
        assert page.evaluate("db.realtime.accessTokenValue") != token
        with carbook_for(own) as cb:
            cb.auth.sign_in(booker, PASSWORD)
            cb.bookings.book(car_id)
        expect(car(page, car_id)).to_have_count(0)
        not_reloaded(page)
