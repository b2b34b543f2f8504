"""What the CLI tests share: `carbook …` run in-process against the session's stack with a
config dir of each test's own (`cli`), and an image file to add cars with (`image`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from carbook_cli import app
from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG, carbook_for, stack_db, unique_email

runner = CliRunner()
ALREADY = "Already booked. Be fast next time."


class Cli:
    """Runs `carbook …` in-process with the stack's URL and keys and a config dir of its own."""

    def __init__(self, stack: LocalStack, config: Path) -> None:
        s = stack.settings
        self.stack = stack
        self.env = {
            "SUPABASE_URL": s.api_url,
            # Today's key names and keys; tests elsewhere keep the legacy ones working.
            "SUPABASE_PUBLISHABLE_KEY": s.publishable_key,
            "SUPABASE_SECRET_KEY": s.secret_key,
            "SUPABASE_DB_URL": s.db_url,
            "CARBOOK_CONFIG_DIR": str(config),
            "COLUMNS": "200",
        }

    def __call__(self, *args: str, input: str | None = None) -> Any:
        return runner.invoke(app, list(args), env=self.env, input=input)

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def subprocess(self, *args: str) -> subprocess.CompletedProcess[str]:
        import os

        return subprocess.run(
            [sys.executable, "-m", "carbook_cli", *args],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, **self.env},
        )

    def login_admin(self) -> None:
        result = self("auth", "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
        assert result.exit_code == 0, result.output

    def login_new_user(self) -> str:
        email = unique_email("cli")
        with carbook_for(self.stack) as cb:
            cb.auth.sign_up(email, "correct-horse-9")
        result = self("auth", "login", "--email", email, "--password", "correct-horse-9")
        assert result.exit_code == 0, result.output
        return email

    def state(self) -> tuple[Any, ...]:
        with stack_db(self.stack) as conn:
            rows = tuple(
                conn.execute(q).fetchall()
                for q in (
                    "select id, make, model, year, price_in_paise, currency, is_published, booking_status,"
                    " booked_by, image_path, ref from public.cars order by id",
                    "select count(*) from public.audit_logs",
                    "select bucket_id, name from storage.objects order by 1, 2",
                    "select count(*) from auth.users",
                    "select user_id from public.user_roles order by 1",
                )
            )
        files = sorted(p.name for p in (self.stack.settings.storage_dir / "objects").glob("*"))
        return (*rows, files)


@pytest.fixture
def cli(stack: LocalStack, tmp_path: Path) -> Iterator[Cli]:
    yield Cli(stack, tmp_path / "config")


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "car.png"
    path.write_bytes(PNG)
    return path


def add_car(cli: Cli, image: Path, *extra: str) -> dict[str, Any]:
    data: dict[str, Any] = cli.json(
        "cars", "add", "--make", "Kia", "--model", "Sonet", "--year", "2023", "--price", "999.50",
        "--currency", "INR", "--image", str(image), *extra,
    )  # fmt: skip
    return data
