"""Bad input to the SDK fails with a clear carbook error before any network call.

The client points at a port where nothing listens: a request would fail with a
connection error, so getting a ValidationError proves nothing was sent.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from carbook_sdk import (
    Carbook,
    ConfigurationError,
    ImageTooLargeError,
    Money,
    NewCar,
    Settings,
    UnsupportedImageTypeError,
    ValidationError,
)
from carbook_sdk.config import LOCAL_ANON_KEY, LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY
from carbook_stack.local_postgres import free_port

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


@pytest.fixture
def offline() -> Any:
    with Carbook(f"http://127.0.0.1:{free_port()}", LOCAL_ANON_KEY) as cb:
        yield cb


def _car(**changes: Any) -> dict[str, Any]:
    return {"make": "Tata", "model": "Nexon", "year": 2024, "price": Money.of("1499", "INR"), **changes}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"price": Money.of(Decimal("-1"), "INR")}, "price must not be negative"),
        ({"make": "  "}, "make must be 1 to 100 characters"),
        ({"year": 1700}, "year must be between 1886 and 2100"),
        ({"colour": "red"}, "colour is not a field that can be set"),
        ({"model": "a\x00b"}, "model must not contain control characters"),
    ],
)
def test_bad_car_fields(offline: Carbook, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        offline.cars.create(_car(**changes), PNG)
    assert message in str(err.value)
    # For people: no model class, no pydantic wording.
    assert "NewCar" not in str(err.value) and "Value error" not in str(err.value)


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [("1499.001", "INR", "more decimals than INR"), ("10", "ABC", "unknown currency 'ABC'")],
)
def test_bad_price(amount: str, currency: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        NewCar(make="Tata", model="Nexon", year=2024, price=Money.of(amount, currency))


def test_text_with_an_image_extension_is_refused_by_content(offline: Carbook, tmp_path: Path) -> None:
    fake = tmp_path / "car.png"
    fake.write_text("definitely not a picture")
    with pytest.raises(UnsupportedImageTypeError, match="is not a JPEG, PNG, WEBP image"):
        offline.cars.create(_car(), fake)


def test_too_large_image_is_refused_before_reading_it(offline: Carbook, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with big.open("wb") as f:
        f.write(PNG)
        f.truncate(5 * 1024 * 1024 + 1)
    with pytest.raises(ImageTooLargeError, match="the limit is 5,242,880"):
        offline.cars.create(_car(), big)


def test_empty_and_missing_images(offline: Carbook, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ValidationError, match="is empty"):
        offline.cars.create(_car(), empty)
    with pytest.raises(ValidationError, match="cannot read image"):
        offline.cars.create(_car(), tmp_path / "nope.jpg")


@pytest.mark.parametrize("bad", ["not-a-uuid", "", "123", "'; drop table cars; --"])
def test_malformed_car_ids(offline: Carbook, bad: str) -> None:
    for call in (offline.bookings.book, offline.cars.get, offline.cars.publish):
        with pytest.raises(ValidationError, match="not a valid car id"):
            call(bad)


@pytest.mark.parametrize(("limit", "offset"), [(0, None), (1001, None), (10, -1)])
def test_bad_paging(offline: Carbook, limit: int, offset: int | None) -> None:
    with pytest.raises(ValidationError):
        offline.cars.list_available(limit=limit, offset=offset)


def test_bad_cursor(offline: Carbook) -> None:
    with pytest.raises(ValidationError, match="not a valid page cursor"):
        offline.cars.list_available(cursor="garbage!")


def test_bad_credentials_shape(offline: Carbook) -> None:
    with pytest.raises(ValidationError, match="not a valid email address"):
        offline.auth.sign_in("not-an-email", "pw")
    with pytest.raises(ValidationError, match="a password is required"):
        offline.auth.sign_up("a@example.test", "")


def test_nothing_to_update(offline: Carbook) -> None:
    with pytest.raises(ValidationError, match="nothing to update"):
        offline.cars.update("1e5a9c1d-4b7d-4f2e-9a63-5d8e7c000001")


def test_settings_are_validated_field_by_field() -> None:
    with pytest.raises(ConfigurationError) as err:
        Settings.resolve(env={}, use_local_defaults=False, url="ftp://x")
    assert "url: must start with http:// or https://" in str(err.value)
    assert "Value error" not in str(err.value)
    assert "key: Field required" in str(err.value)


@pytest.mark.parametrize("url", ["http://", "https://", "http://:80", "http://host:port"])
def test_a_url_without_a_host_is_refused_before_supabase_py_sees_it(url: str) -> None:
    # supabase-py raises its own SupabaseException("Invalid URL") for these; it must never leak.
    with pytest.raises(ConfigurationError, match="url: "):
        Carbook(url, "some-key")


def test_settings_precedence() -> None:
    env = {"SUPABASE_URL": "http://env:1", "SUPABASE_ANON_KEY": "env-key", "CARBOOK_URL": "http://carbook:2"}
    s = Settings.resolve(env=env)
    assert (s.url, s.key) == ("http://carbook:2", "env-key")
    explicit = Settings.resolve(env=env, url="http://explicit:3")
    assert explicit.url == "http://explicit:3"
    local = Settings.resolve(env={})
    assert local.key == LOCAL_PUBLISHABLE_KEY and local.secret_key == LOCAL_SECRET_KEY
    assert local.image_max_bytes == 5 * 1024 * 1024


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # Today's names win over the legacy ones of the same family; CARBOOK_* over SUPABASE_*.
        ({"SUPABASE_PUBLISHABLE_KEY": "new", "SUPABASE_ANON_KEY": "old"}, ("new", None)),
        ({"SUPABASE_ANON_KEY": "old", "SUPABASE_SERVICE_ROLE_KEY": "old-secret"}, ("old", "old-secret")),
        ({"SUPABASE_SECRET_KEY": "s", "SUPABASE_SERVICE_ROLE_KEY": "old", "SUPABASE_KEY": "k"}, ("k", "s")),
        ({"CARBOOK_ANON_KEY": "c", "SUPABASE_PUBLISHABLE_KEY": "p"}, ("c", None)),
    ],
)
def test_key_variables_new_names_first(env: dict[str, str], expected: tuple[str, str | None]) -> None:
    s = Settings.resolve(env={"SUPABASE_URL": "https://abc.supabase.co", **env})
    assert (s.key, s.secret_key) == expected


def test_legacy_keyword_names_are_aliases() -> None:
    with Carbook("https://abc.supabase.co", anon_key="a", service_role_key="s") as cb:
        assert (cb.settings.key, cb.settings.secret_key) == ("a", "s")
    with Carbook("https://abc.supabase.co", "a", secret_key="s", service_role_key="s") as cb:
        assert cb.settings.secret_key == "s"
    with pytest.raises(ConfigurationError, match="secret_key= and service_role_key= are the same setting"):
        Carbook("https://abc.supabase.co", "a", secret_key="s", service_role_key="other")
    with pytest.raises(ConfigurationError, match="key= and anon_key= are the same setting"):
        Carbook("https://abc.supabase.co", "a", anon_key="b")


def test_local_keys_never_go_to_another_server(tmp_path: Path) -> None:
    """The well-known local keys and database pair only with the local stack's URL."""
    local = Settings.resolve(env={}, state_dir=tmp_path)
    assert local.secret_key and local.db_url
    same = Settings.resolve(env={}, state_dir=tmp_path, url=local.url.replace("127.0.0.1", "localhost") + "/")
    assert (same.key, same.secret_key) == (local.key, local.secret_key)
    for env, explicit in (
        ({"SUPABASE_URL": "https://abc.supabase.co"}, {}),
        ({}, {"url": "https://abc.supabase.co"}),
    ):
        with pytest.raises(ConfigurationError, match=r"no publishable key for https://abc\.supabase\.co"):
            Settings.resolve(env=env, state_dir=tmp_path, **explicit)
    remote = Settings.resolve(
        env={"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_ANON_KEY": "k"}, state_dir=tmp_path
    )
    assert (remote.key, remote.secret_key, remote.db_url) == ("k", None, None)


def test_local_and_from_env_take_a_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Carbook.local(tmp_path, timeout=3) as cb:
        assert cb.settings.timeout == 3 and cb.settings.key == LOCAL_PUBLISHABLE_KEY
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co")
    monkeypatch.setenv("SUPABASE_ANON_KEY", "k")
    with Carbook.from_env(timeout=4) as cb:
        assert (cb.settings.url, cb.settings.timeout) == ("https://abc.supabase.co", 4)
    with pytest.raises(ConfigurationError, match="timeout"):
        Carbook.local(tmp_path, timeout=-1)


@pytest.mark.parametrize("field", ["make", "model", "year", "price", "is_published"])
def test_updates_cannot_clear_a_required_field(offline: Carbook, field: str) -> None:
    with pytest.raises(ValidationError, match=f"{field} cannot be cleared"):
        offline.cars.update("1e5a9c1d-4b7d-4f2e-9a63-5d8e7c000001", **{field: None})


def test_bad_ids_are_named_for_what_they_are(offline: Carbook) -> None:
    with pytest.raises(ValidationError, match="not a valid user id"):
        offline.audit.list(actor_id="bob")
    with pytest.raises(ValidationError, match="not a valid car id"):
        offline.audit.list(car_id="bob")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "sold"}, "status must be 'available' or 'booked'"),
        ({"published": "yes"}, "published must be True, False or None"),
        ({"limit": 0}, "limit must be an integer"),
        ({"offset": -1}, "offset must be a non-negative integer"),
        ({"cursor": "10"}, "not a valid page cursor: '10'"),
        ({"cursor": "???"}, "not a valid page cursor"),
    ],
)
def test_list_all_filters_are_checked_before_sending(offline: Carbook, kwargs: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        offline.cars.list_all(**kwargs)


def test_images_delete_and_replace_check_their_input(offline: Carbook) -> None:
    with pytest.raises(ValidationError, match="not a valid car id"):
        offline.cars.replace_image("nope", PNG)
    with pytest.raises(UnsupportedImageTypeError, match="checked by its content"):
        offline.cars.replace_image("1e5a9c1d-4b7d-4f2e-9a63-5d8e7c000001", b"plain text")
    with pytest.raises(ValidationError, match="colour is not a field that can be set"):
        offline.cars.replace_image("1e5a9c1d-4b7d-4f2e-9a63-5d8e7c000001", PNG, colour="red")


def test_one_precedence_for_the_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from carbook_sdk.config import default_db_url

    monkeypatch.setenv("SUPABASE_DB_URL", "postgresql://supabase-env/db")
    assert default_db_url() == "postgresql://supabase-env/db"
    monkeypatch.setenv("CARBOOK_DB_URL", "postgresql://carbook-env/db")
    assert default_db_url() == "postgresql://carbook-env/db"
    assert default_db_url("postgresql://explicit/db") == "postgresql://explicit/db"
    s = Settings.resolve(env={"CARBOOK_DB_URL": "postgresql://a/db", "SUPABASE_DB_URL": "postgresql://b/db"})
    assert s.db_url == "postgresql://a/db"


def test_the_cli_reads_carbook_variables_before_supabase_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from carbook_cli.context import settings
    from carbook_cli.main import app

    monkeypatch.setenv("SUPABASE_URL", "http://supabase-env:1")
    monkeypatch.setenv("CARBOOK_URL", "http://carbook-env:2")
    monkeypatch.setenv("CARBOOK_ANON_KEY", "carbook-key")
    monkeypatch.setenv("SUPABASE_ANON_KEY", "supabase-key")
    # `--version` is eager; `auth` with no command shows help: both parse the global options.
    result = CliRunner().invoke(app, ["auth", "--help"])
    assert result.exit_code == 0
    s = settings()
    assert (s.url, s.key) == ("http://carbook-env:2", "carbook-key")


def test_cli_legacy_key_flags_are_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from carbook_cli.context import settings
    from carbook_cli.main import app

    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co")
    monkeypatch.setenv("SUPABASE_PUBLISHABLE_KEY", "from-env")
    runner = CliRunner()
    # A legacy flag typed on the command line beats the environment, like any flag.
    assert (
        runner.invoke(app, ["--anon-key", "legacy", "--service-role-key", "s", "auth", "--help"]).exit_code
        == 0
    )
    assert (settings().key, settings().secret_key) == ("legacy", "s")
    assert runner.invoke(app, ["--publishable-key", "new", "auth", "--help"]).exit_code == 0
    assert settings().key == "new"
    both = runner.invoke(app, ["--publishable-key", "a", "--anon-key", "b", "auth", "--help"])
    assert both.exit_code == 2
    assert "--publishable-key and --anon-key are the same option" in both.output
    # The legacy flags stay out of --help; today's names are shown with their variables.
    shown = runner.invoke(app, ["--help"]).output
    assert "--publishable-key" in shown and "SUPABASE_PUBLISHABLE_KEY" in shown
    assert "--anon-key" not in shown and "--service-role-key" not in shown
