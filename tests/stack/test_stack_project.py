"""A project's stack as its user runs it from the project folder: `[storage.buckets.*]` of
config.toml takes effect (applied at every start, listed as changed while the stack runs,
applied by `stack restart`; a refusal names the limit), and a stack started with
`--state-dir` is still found by `stack status` and `stack stop`."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import psycopg
import pytest

from carbook_sdk.media import detect_image_type
from carbook_stack.local_postgres import cluster_dir, free_port
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, carbook_in, supabase_client

#: A real 1x1 GIF.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
IMAGE = Path(__file__).resolve().parents[2] / "supabase" / "images" / "sample-car.png"


def _bucket(db_url: str) -> tuple[object, ...] | None:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "select public, file_size_limit, allowed_mime_types from storage.buckets where id = 'car-images'"
        ).fetchone()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    os.chmod(tmp_path, 0o755)
    assert carbook_in(folder, "init").returncode == 0
    config = folder / "supabase" / "config.toml"
    api, db = free_port(), free_port()
    text = re.sub(r"(?m)^port = 54321$", f"port = {api}", config.read_text())
    config.write_text(re.sub(r"(?m)^port = 54322$", f"port = {db}", text))
    yield folder
    carbook_in(folder, "stack", "stop")
    import shutil

    shutil.rmtree(cluster_dir(folder / ".carbook"), ignore_errors=True)


def test_a_bucket_edit_takes_effect_on_restart_and_a_refusal_names_the_limit(project: Path) -> None:
    big = project / "big.png"
    big.write_bytes(IMAGE.read_bytes() + bytes(4096))  # a PNG over the new limit
    started = carbook_in(project, "stack", "start", "--json")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert _bucket(info["db_url"]) == (True, 5 * 1024 * 1024, ["image/jpeg", "image/png", "image/webp"])

    config = project / "supabase" / "config.toml"
    text = config.read_text().replace('file_size_limit = "5MiB"', 'file_size_limit = "1KiB"')
    text = text.replace(
        'allowed_mime_types = ["image/jpeg", "image/png", "image/webp"]',
        'allowed_mime_types = ["image/jpeg", "image/png", "image/webp", "image/gif"]',
    )
    config.write_text(text)
    status = json.loads(carbook_in(project, "stack", "status", "--json").stdout)
    assert "[storage.buckets]" in status["config_changed"]
    assert _bucket(info["db_url"])[1] == 5 * 1024 * 1024  # type: ignore[index]  # not before a restart

    restarted = carbook_in(project, "stack", "restart")
    assert restarted.returncode == 0, restarted.stderr
    assert _bucket(info["db_url"]) == (True, 1024, ["image/jpeg", "image/png", "image/webp", "image/gif"])

    client = supabase_client(info["api_url"], info["publishable_key"])
    client.auth.sign_in_with_password({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    images = client.storage.from_("car-images")
    with pytest.raises(Exception, match=re.escape("The object exceeded the maximum allowed size (1 KiB)")):
        images.upload("cars/too-big.png", big.read_bytes(), {"content-type": "image/png"})
    # A real GIF is a GIF, by its content, now that the bucket allows it.
    assert detect_image_type(GIF) == ("image/gif", "gif")
    images.upload("cars/dot.gif", GIF, {"content-type": "image/gif"})
    assert client.storage.from_("car-images").download("cars/dot.gif") == GIF
    # And the CLI names the limit before sending anything.
    assert (
        carbook_in(project, "auth", "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD).returncode
        == 0
    )
    added = carbook_in(
        project,
        "cars",
        "add",
        "--make",
        "Tata",
        "--model",
        "Big",
        "--year",
        "2024",
        "--price",
        "1",
        "--image",
        str(big),
    )
    assert added.returncode == 3, added.stderr
    assert f"the limit is {1024:,}" in added.stderr


def test_stop_and_status_find_a_stack_started_with_another_state_dir(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "state-elsewhere"
    started = carbook_in(project, "stack", "start", "--state-dir", str(elsewhere))
    assert started.returncode == 0, started.stderr
    try:
        status = carbook_in(project, "stack", "status", "--json")
        assert status.returncode == 0, status.stderr
        assert all(p["healthy"] for p in json.loads(status.stdout)["parts"])
        stopped = carbook_in(project, "stack", "stop")
        assert stopped.returncode == 0 and stopped.stdout.startswith("Stack stopped ("), stopped.stdout
        again = carbook_in(project, "stack", "stop")
        assert again.stdout.startswith("Nothing was running"), again.stdout
    finally:
        carbook_in(project, "stack", "stop", "--state-dir", str(elsewhere))
        import shutil

        shutil.rmtree(cluster_dir(elsewhere), ignore_errors=True)
