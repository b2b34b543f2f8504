"""The project's files: migration names, config values, the well-known local keys."""

from __future__ import annotations

import re
from pathlib import Path

import jwt
import pytest

from carbook_sdk import ConfigurationError, PostgresNotFoundError, load_local_config, supabase_dir
from carbook_sdk.config import LOCAL_ANON_KEY, LOCAL_JWT_SECRET, LOCAL_SERVICE_ROLE_KEY, parse_size
from carbook_stack.local_postgres import find_pg_bindir

SUPABASE = supabase_dir()


def test_every_migration_file_is_named_like_the_supabase_cli_wants() -> None:
    names = sorted(p.name for p in (SUPABASE / "migrations").iterdir())
    assert names == [
        "20250916000000_base_schema.sql",
        "20250916010000_atomic_booking_implementation.sql",
        "20250917000000_car_import_ref.sql",
        "20250918000000_tighten_api_grants.sql",
        "20250919000000_audit_append_only.sql",
        "20250920000000_book_car_read_first.sql",
        "20250921000000_anonymous_users_cannot_book.sql",
        "20250922000000_booking_lifecycle.sql",
    ]
    assert all(re.fullmatch(r"\d{14}_[a-z0-9_]+\.sql", n) for n in names)


def test_no_rollback_sits_among_the_migrations() -> None:
    assert not [p for p in (SUPABASE / "migrations").iterdir() if "rollback" in p.name]
    assert (SUPABASE / "rollbacks" / "20250916010001_rollback_atomic_booking_implementation.sql").is_file()


def test_config_toml_values_are_read() -> None:
    cfg = load_local_config()
    assert (cfg.api_port, cfg.db_port) == (54321, 54322)
    assert cfg.jwt_expiry == 3600 and cfg.enable_signup and not cfg.enable_confirmations
    bucket = cfg.bucket("car-images")
    assert bucket.public and bucket.file_size_limit == 5 * 1024 * 1024
    assert bucket.allowed_mime_types == ("image/jpeg", "image/png", "image/webp")


def test_config_bucket_matches_the_migration() -> None:
    """The bucket row the base migration inserts has the limits config.toml declares."""
    sql = (SUPABASE / "migrations" / "20250916000000_base_schema.sql").read_text()
    bucket = load_local_config().bucket("car-images")
    mimes = ", ".join(f"'{m}'" for m in bucket.allowed_mime_types)
    assert f"('car-images', 'car-images', true, {bucket.file_size_limit}, array[{mimes}])" in sql


def test_unknown_bucket_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="bucket 'nope' is not configured"):
        load_local_config().bucket("nope")


@pytest.mark.parametrize(
    ("text", "size"), [("5MiB", 5242880), ("50MB", 50_000_000), ("10", 10), ("1 GiB", 1024**3)]
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_refuses_nonsense() -> None:
    with pytest.raises(ConfigurationError, match="not a size: 'lots'"):
        parse_size("lots")


@pytest.mark.parametrize(
    ("key", "role"), [(LOCAL_ANON_KEY, "anon"), (LOCAL_SERVICE_ROLE_KEY, "service_role")]
)
def test_local_keys_are_the_supabase_cli_ones(key: str, role: str) -> None:
    claims = jwt.decode(key, LOCAL_JWT_SECRET, algorithms=["HS256"])
    assert claims == {"iss": "supabase-demo", "role": role, "exp": 1983812996}


def test_missing_postgres_names_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("CARBOOK_PG_BINDIR", str(tmp_path))
    with pytest.raises(PostgresNotFoundError) as info:
        find_pg_bindir()
    assert "apt-get install postgresql" in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_api_and_auth_keys_reach_the_stack_settings(tmp_path: Path) -> None:
    from carbook_sdk.config import load_local_config
    from carbook_stack.manager import StackSettings

    toml = tmp_path / "config.toml"
    toml.write_text(
        '[api]\nport = 1\nschemas = ["public", "v2"]\nextra_search_path = ["public"]\nmax_rows = 50\n'
        "[auth]\njwt_expiry = 60\nenable_anonymous_sign_ins = true\n[auth.email]\nenable_confirmations = true\n"
    )
    cfg = load_local_config(toml)
    settings = StackSettings.from_config(tmp_path, cfg)
    assert (settings.schemas, settings.extra_search_path, settings.max_rows) == (
        ("public", "v2"),
        ("public",),
        50,
    )
    assert (settings.jwt_expiry, settings.enable_confirmations, settings.enable_anonymous_sign_ins) == (
        60,
        True,
        True,
    )
    shipped = StackSettings.from_config(tmp_path)
    assert (shipped.schemas, shipped.max_rows, shipped.enable_confirmations) == (("public",), 1000, False)
    # Off as in the Supabase CLI, and said so in the shipped config.toml.
    assert shipped.enable_anonymous_sign_ins is False
    assert "enable_anonymous_sign_ins = false" in (supabase_dir() / "config.toml").read_text()
    # A running stack whose config.toml turned it on says so (`carbook stack status`).
    assert "[auth].enable_anonymous_sign_ins" in shipped.config_changes(settings)
