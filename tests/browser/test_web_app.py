"""The seed's flows in a real browser: examples/web on supabase-js, on an origin of its
own, against the stack. Every assertion is on what the page shows, and then on what the
database and storage hold."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from carbook_stack.manager import LocalStack
from tests.helpers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    make_users,
    stack_db,
    temporary_stack,
    unique_email,
)

from .conftest import IMAGE, add_car, open_app

#: What a booking ends with on the page: won, or lost.
OUTCOME = re.compile(r"^(Booked: the .* is yours\.|Already booked\. Be fast next time\.)$")


def sign_in(page: Page, email: str, password: str) -> None:
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#sign-in")
    expect(page.locator("#who")).to_have_text(f"Signed in as {email}")
    # The page has shown everything the user sees (listing, bookings, admin section).
    page.wait_for_function("email => document.body.dataset.user === email", arg=email)


def car(page: Page, car_id: str, within: str = "#cars") -> Any:
    return page.locator(f"{within} li[data-car-id='{car_id}']")


def images_loaded(page: Page, selector: str) -> bool:
    return bool(
        page.eval_on_selector_all(
            selector, "imgs => imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)"
        )
    )


def test_the_listing_shows_what_a_visitor_may_see_with_images_and_prices(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    listed = add_car(stack, f"listed-{tag}", price=149950)
    hidden = add_car(stack, f"hidden-{tag}", published=False)
    page = open_app(new_context(), web_origin, stack)
    item = car(page, listed)
    expect(item.locator(".title")).to_have_text(f"Browser listed-{tag} (2024)")
    expect(item.locator(".price")).to_have_text("₹1,499.50")
    page.wait_for_function(
        "id => { const i = document.querySelector(`#cars li[data-car-id='${id}'] img`);"
        " return i && i.complete && i.naturalWidth > 0 }",
        arg=listed,
    )
    expect(car(page, hidden)).to_have_count(0)
    # The whole listing is what anon may select: published and available, no more.
    with stack_db(stack) as conn:
        visible = {
            r[0]
            for r in conn.execute(
                "select id::text from public.cars where is_published and booking_status = 'available'"
            )
        }
    shown = set(page.eval_on_selector_all("#cars li", "lis => lis.map(li => li.dataset.carId)"))
    assert listed in shown and hidden not in shown
    assert shown <= visible


def test_a_car_without_an_image_is_listed_and_the_page_still_works(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    """A published car made outside carbook (plain SQL, no image) must not break the page
    for everyone: it is listed, without a picture, and the rest of the listing shows."""
    tag = uuid.uuid4().hex[:8]
    with stack_db(stack) as conn:
        row = conn.execute(
            """insert into public.cars (make, model, year, is_published, price_in_paise)
               values ('Bare', %s, 2020, true, 100) returning id::text""",
            (tag,),
        ).fetchone()
    assert row is not None
    with_image = add_car(stack, f"pictured-{tag}")
    page = open_app(new_context(), web_origin, stack)
    expect(car(page, row[0]).locator(".title")).to_have_text(f"Bare {tag} (2020)")
    expect(car(page, row[0]).locator("img.no-image")).to_have_count(1)
    expect(car(page, with_image).locator(".title")).to_have_text(f"Browser pictured-{tag} (2024)")
    with stack_db(stack) as conn:
        conn.execute("delete from public.cars where id = %s", (row[0],))


def test_sign_up_survives_a_reload_and_sign_out_ends_it(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    email = unique_email("browser")
    page = open_app(new_context(), web_origin, stack)
    page.fill("#email", email)
    page.fill("#password", "correct-horse-9")
    page.click("#sign-up")
    expect(page.locator("#who")).to_have_text(f"Signed in as {email}")
    expect(page.locator("#message")).to_have_text("Signed up and signed in.")
    with stack_db(stack) as conn:
        user = conn.execute("select id::text from auth.users where email = %s", (email,)).fetchone()
    assert user is not None

    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    expect(page.locator("#who")).to_have_text(f"Signed in as {email}")
    expect(page.locator("#mine")).to_be_visible()

    page.click("#sign-out")
    expect(page.locator("#who")).to_have_text("Not signed in")
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('auth-token'))") == []
    with stack_db(stack) as conn:
        sessions = conn.execute(
            "select count(*) from auth.sessions where user_id::text = %s", user
        ).fetchone()
    assert sessions == (0,)
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    expect(page.locator("#who")).to_have_text("Not signed in")

    sign_in(page, email, "correct-horse-9")


def test_wrong_credentials_are_shown_and_change_nothing(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    page = open_app(new_context(), web_origin, stack)
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", "not-the-password")
    page.click("#sign-in")
    expect(page.locator("#message")).to_have_text("Invalid login credentials")
    expect(page.locator("#who")).to_have_text("Not signed in")

    email = unique_email("short")
    page.fill("#email", email)
    page.fill("#password", "short")
    page.click("#sign-up")
    expect(page.locator("#message")).to_contain_text("Password should be at least")
    with stack_db(stack) as conn:
        assert conn.execute("select count(*) from auth.users where email = %s", (email,)).fetchone() == (0,)


def test_booking_and_a_stale_listing_that_lost_the_race(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    car_id = add_car(stack, f"race-{tag}")
    (_, winner), (_, loser) = make_users(stack, 2, f"browser-{tag}")
    first = open_app(new_context(), web_origin, stack)
    # The second page's Realtime is blocked (a proxy that drops WebSockets, say): its
    # listing goes stale, and the database still decides its click.
    offline = new_context()
    offline.route_web_socket(re.compile(r"/realtime/v1/websocket"), lambda ws: ws.close())
    second = open_app(offline, web_origin, stack)
    sign_in(first, winner, PASSWORD)
    sign_in(second, loser, PASSWORD)
    expect(car(second, car_id)).to_have_count(1)

    car(first, car_id).locator("button.book").click()
    expect(first.locator("#message")).to_have_text(f"Booked: the Browser race-{tag} is yours.")
    expect(car(first, car_id, "#my-cars")).to_have_count(1)
    expect(car(first, car_id)).to_have_count(0)

    # The second page never joined, so it still lists the car: its click loses, and the
    # page says so.
    assert second.get_attribute("#live", "data-live") != "joined"
    car(second, car_id).locator("button.book").click()
    expect(second.locator("#message")).to_have_text("Already booked. Be fast next time.")
    expect(car(second, car_id)).to_have_class("booked")
    expect(car(second, car_id, "#my-cars")).to_have_count(0)

    with stack_db(stack) as conn:
        booked_by = conn.execute(
            "select u.email from public.cars c join auth.users u on u.id = c.booked_by where c.id = %s",
            (car_id,),
        ).fetchone()
        audit = conn.execute(
            "select count(*) from public.audit_logs where record_id = %s and action = 'car.booked'", (car_id,)
        ).fetchone()
    assert booked_by == (winner,) and audit == (1,)


def test_pages_clicking_at_once_get_one_winner(stack: LocalStack, web_origin: str, new_context: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    car_id = add_car(stack, f"rush-{tag}")
    users = make_users(stack, 4, f"rush-{tag}")
    pages = [open_app(new_context(), web_origin, stack) for _ in users]
    for page, (_, email) in zip(pages, users, strict=True):
        sign_in(page, email, PASSWORD)
        expect(car(page, car_id)).to_have_count(1)
    # Each click starts the page's request and returns: the requests overlap. The buttons
    # are taken first: the live listing may take the car out of a page before it clicks.
    for page in pages:
        page.evaluate(
            "id => { window.__book = document.querySelector(`#cars li[data-car-id='${id}'] button`) }", car_id
        )
    for page in pages:
        page.evaluate("window.__book.click()")
    messages = []
    for page in pages:
        expect(page.locator("#message")).to_have_text(OUTCOME)
        messages.append(page.locator("#message").text_content())
    assert sorted(messages) == sorted(
        [f"Booked: the Browser rush-{tag} is yours."] + ["Already booked. Be fast next time."] * 3
    ), messages
    with stack_db(stack) as conn:
        rows = conn.execute(
            "select count(*) from public.audit_logs where record_id = %s and action = 'car.booked'", (car_id,)
        ).fetchone()
    assert rows == (1,)


def test_an_expired_token_is_refreshed_by_the_page(web_origin: str, new_context: Any) -> None:
    # supabase-js refreshes a session that expires within 90 s whenever it needs the token.
    with temporary_stack("carbook-browser-", jwt_expiry=4) as own:
        ((user_id, email),) = make_users(own, 1, "refresh")
        car_id = add_car(own, "refresh")
        page = open_app(new_context(), web_origin, own)
        sign_in(page, email, PASSWORD)
        token = page.evaluate("JSON.parse(localStorage.getItem('sb-127-auth-token')).access_token")
        time.sleep(5)  # the first access token has expired now
        car(page, car_id).locator("button.book").click()
        expect(page.locator("#message")).to_have_text("Booked: the Browser refresh is yours.")
        assert int(page.evaluate("document.body.dataset.refreshes || '0'")) >= 1
        assert page.evaluate("JSON.parse(localStorage.getItem('sb-127-auth-token')).access_token") != token
        with stack_db(own) as conn:
            booked = conn.execute(
                "select booked_by::text from public.cars where id = %s", (car_id,)
            ).fetchone()
            revoked = conn.execute(
                "select count(*) from auth.refresh_tokens where user_id = %s and revoked", (user_id,)
            ).fetchone()
        assert booked == (user_id,)
        assert revoked is not None and revoked[0] >= 1


def _admin_page(stack: LocalStack, web_origin: str, ctx: BrowserContext) -> Page:
    page = open_app(ctx, web_origin, stack)
    sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(page.locator("#admin")).to_be_visible()
    return page


def _objects(stack: LocalStack) -> set[str]:
    with stack_db(stack) as conn:
        return {r[0] for r in conn.execute("select name from storage.objects where bucket_id = 'car-images'")}


def test_an_admin_adds_a_car_image_first_from_a_file_input(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    page = _admin_page(stack, web_origin, new_context())
    page.fill("#car-make", "Skoda")
    page.fill("#car-model", f"Kushaq {tag}")
    page.fill("#car-year", "2024")
    page.fill("#car-price", "12,34,567.50")
    page.set_input_files("#car-image", str(IMAGE))
    page.click("#car-add")
    expect(page.locator("#message")).to_have_text(f"Added the Skoda Kushaq {tag}.")
    car_id = page.evaluate("document.body.dataset.lastCar")
    expect(car(page, car_id).locator(".price")).to_have_text("₹12,34,567.50")
    page.wait_for_function(
        "id => { const i = document.querySelector(`#cars li[data-car-id='${id}'] img`);"
        " return i && i.complete && i.naturalWidth > 0 }",
        arg=car_id,
    )
    with stack_db(stack) as conn:
        row = conn.execute(
            """select c.price_in_paise, c.currency, c.is_published, o.created_at <= c.created_at,
                      o.owner_id = u.id::text, o.metadata->>'mimetype'
                 from public.cars c
                 join storage.objects o on o.bucket_id = 'car-images' and o.name = c.image_path
                 join auth.users u on u.email = %s
                where c.id = %s""",
            (ADMIN_EMAIL, car_id),
        ).fetchone()
        audit = conn.execute(
            "select count(*) from public.audit_logs where record_id = %s and action = 'car.insert'", (car_id,)
        ).fetchone()
    # The image was stored before the row, by the admin who added the car.
    assert row == (123456750, "INR", True, True, True, "image/png")
    assert audit == (1,)


def test_a_failed_insert_takes_its_image_back_and_bad_input_sends_nothing(
    stack: LocalStack, web_origin: str, new_context: Any, tmp_path: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    page = _admin_page(stack, web_origin, new_context())
    before = _objects(stack)

    def attempt(year: str, price: str, image: str) -> None:
        page.fill("#car-make", "Fiat")
        page.fill("#car-model", f"Punto {tag}")
        page.fill("#car-year", year)
        page.fill("#car-price", price)
        page.set_input_files("#car-image", image)
        page.click("#car-add")

    # The database refuses the row (year out of range) after the image went up.
    attempt("1800", "100", str(IMAGE))
    expect(page.locator("#message")).to_contain_text("The car was not added:")
    # Refused in the page, before anything is sent.
    attempt("2020", "1.234", str(IMAGE))
    expect(page.locator("#message")).to_have_text('"1.234" is not a price in INR: write it like 1,499.00')
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    attempt("2020", "100", str(text))
    expect(page.locator("#message")).to_have_text("notes.txt is not a JPEG, PNG or WebP image.")
    # Disguised: a PNG by name and type, not by content; Storage refuses it.
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"GIF89a" + bytes(64))
    attempt("2020", "100", str(fake))
    expect(page.locator("#message")).to_contain_text("The image was not uploaded:")

    assert _objects(stack) == before
    with stack_db(stack) as conn:
        assert conn.execute(
            "select count(*) from public.cars where model = %s", (f"Punto {tag}",)
        ).fetchone() == (0,)


def test_a_signed_upload_url_works_from_the_page(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    name = f"browser/{uuid.uuid4().hex[:10]}.png"
    page = _admin_page(stack, web_origin, new_context())
    page.fill("#signed-name", name)
    page.click("#signed-create")
    expect(page.locator("#signed-url")).to_contain_text("/storage/v1/object/upload/sign/car-images/" + name)
    page.set_input_files("#signed-file", str(IMAGE))
    page.click("#signed-upload")
    expect(page.locator("#message")).to_have_text(f"Uploaded {name} with the signed URL.")
    page.wait_for_function(
        "() => { const i = document.getElementById('signed-preview'); return i.naturalWidth > 0 }"
    )
    with stack_db(stack) as conn:
        owner = conn.execute(
            """select u.email from storage.objects o join auth.users u on u.id::text = o.owner_id
                where o.bucket_id = 'car-images' and o.name = %s""",
            (name,),
        ).fetchone()
    assert owner == (ADMIN_EMAIL,)
    # The URL is spent: a second upload to it is refused, and the page says so.
    page.click("#signed-upload")
    expect(page.locator("#message")).not_to_have_text(f"Uploaded {name} with the signed URL.")


def test_the_secret_key_is_refused_in_a_browser(stack: LocalStack, web_origin: str, new_context: Any) -> None:
    page = open_app(new_context(), web_origin, stack, key=stack.settings.secret_key)
    expect(page.locator("#message")).to_have_text("Forbidden use of secret API key in browser")
    expect(page.locator("#cars li")).to_have_count(0)
