"""`carbook cars import` with the files people actually have, and stopped halfway.

Every bad file gets one clear error, its exit code, and leaves cars, storage objects and
the audit trail as they were; Ctrl-C or SIGTERM leaves no image without a car and the
same command resumes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import PNG

from ..helpers import as_from_a_terminal, stack_db
from .conftest import Cli

ORPHANS = """select count(*) from storage.objects o
              where o.bucket_id = 'car-images'
                and not exists (select 1 from public.cars c where c.image_path = o.name)"""
HEADER = "ref,make,model,year,price,currency,image,published"


def _images(folder: Path) -> Path:
    images = folder / "images"
    images.mkdir(exist_ok=True)
    (images / "car.png").write_bytes(PNG)
    return images


def _rows(tag: str, n: int, sep: str = ",", currency: str = "INR") -> list[str]:
    return [sep.join((f"{tag}-{i:03d}", "Maruti", f"Swift {i}", "2022", f"{500 + i}.00", currency, "car.png", "true"))
            for i in range(n)]  # fmt: skip


def _count(cli: Cli, query: str, *args: object) -> int:
    with stack_db(cli.stack) as conn:
        row = conn.execute(query, args).fetchone()
    assert row is not None
    return int(row[0])


def _one_error_line(stderr: str) -> str:
    """The error: one line, no traceback, no internals."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    for leak in ("Traceback", "NewCar", "Value error", "codec", "_key", "constraint"):
        assert leak not in stderr, stderr
    return lines[0]


# Bad files: one error, the right words, nothing changed ------------------------------------
def test_bad_import_files_say_what_is_wrong_and_change_nothing(cli: Cli, tmp_path: Path) -> None:
    cli.login_admin()
    images = _images(tmp_path)
    before = cli.state()

    def run(name: str, content: bytes, images_dir: Path = images) -> tuple[int, str]:
        path = tmp_path / name
        path.write_bytes(content)
        result = cli("cars", "import", str(path), "--images-dir", str(images_dir))
        return result.exit_code, result.stderr

    code, err = run("empty.csv", b"")
    assert code == 3 and "is empty" in _one_error_line(err)
    code, err = run("blank.csv", b"\n \n")
    assert code == 3 and "is empty" in _one_error_line(err)

    latin1 = f"{HEADER}\nlat-1,Skoda,Octavia,2020,10.00,INR,car.png,true\nlat-2,Citroën,C3,2021,10.00,INR,car.png,true\n"
    code, err = run("latin1.csv", latin1.encode("latin-1"))
    line = _one_error_line(err)
    assert code == 3 and "line 3" in line and "save the file as UTF-8" in line and "0xeb" in line

    code, err = run("short.csv", f"{HEADER}\nshort-1,Tata,Nexon,2024\n".encode())
    assert code == 3 and "missing values for price, currency, image" in err, err
    assert "not an amount" not in err and re.search(r"│\s+2 │", err), err

    code, err = run("long.csv", f"{HEADER}\nlong-1,Tata,Nexon, EV,2024,10.00,INR,car.png,true\n".encode())
    assert code == 3 and "9 values but the header line names 8 columns" in err and "double quotes" in err

    many = "\n".join([HEADER, *_rows("noimg", 5)]) + "\n"
    code, err = run("noimages.csv", many.encode(), images_dir=tmp_path / "no-such-folder")
    line = _one_error_line(err)
    assert code == 3 and "the images folder" in line and "does not exist" in line

    code, err = run("year.csv", f"{HEADER}\nyr-1,Tata,Nexon,1700,10.00,INR,car.png,true\n".encode())
    assert code == 3 and "year must be between 1886 and 2100" in err and "NewCar" not in err

    # Separated by something else: every column is missing, and the message says how to write it.
    code, err = run("names.csv", b"ref|make|model|year|price|currency|image\nx|1\n")
    line = _one_error_line(err)
    assert code == 3 and "lacks column(s) ref, make, model, year, price, currency, image" in line
    assert "separated by commas (or semicolons, or tabs)" in line

    # A quote never closed would swallow every row after it into one value.
    unclosed = (
        f'{HEADER}\nq-1,Tata,"Nexon,2024,10.00,INR,car.png,true\nq-2,Kia,Sonet,2023,9.00,INR,car.png,true\n'
    )
    code, err = run("unclosed.csv", unclosed.encode())
    line = _one_error_line(err)
    assert code == 3 and "double quote opened after line 1 is never closed" in line, line
    code, err = run("stray.csv", f'{HEADER}\nq-3,Tata,"Nexon"EV,2024,10.00,INR,car.png,true\n'.encode())
    line = _one_error_line(err)
    assert code == 3 and "line 2 is not valid CSV" in line and "doubled" in line, line
    # Not a CSV at all (one line of 200 KB): one line, exit 3, not the csv module's error.
    code, err = run("huge.csv", f"{HEADER}\n".encode() + b"x" * 200_000 + b"\n")
    line = _one_error_line(err)
    assert code == 3 and "longer than 128 KiB" in line and "field limit" not in line, line
    assert cli.state() == before


# What spreadsheets save, accepted -------------------------------------------------------------
def test_semicolons_lower_case_currency_and_extra_columns_are_imported_with_one_warning(
    cli: Cli, tmp_path: Path
) -> None:
    cli.login_admin()
    images = _images(tmp_path)
    tag = f"semi{tmp_path.name[-6:]}"
    rows = [f"{HEADER};colour;notes".replace(",", ";"), *(r + ";red;x" for r in _rows(tag, 2, ";", "inr"))]
    path = tmp_path / "excel.csv"
    path.write_text("\n".join(rows) + "\n")
    result = cli("cars", "import", str(path), "--images-dir", str(images))
    assert result.exit_code == 0, result.output
    assert result.stderr.count("Warning:") == 1 and "columns colour, notes ignored" in result.stderr
    assert re.search(r"imported\s+│\s+2", result.stdout)
    currencies = _count(
        cli, "select count(*) from public.cars where ref like %s and currency = 'INR'", f"{tag}-%"
    )
    assert currencies == 2


# The same ref with other data --------------------------------------------------------------
def test_an_existing_ref_with_other_data_is_reported_and_updated_only_with_update(
    cli: Cli, tmp_path: Path
) -> None:
    cli.login_admin()
    images = _images(tmp_path)
    ref = f"chg-{tmp_path.name[-8:]}"
    path = tmp_path / "cars.csv"
    path.write_text(f"{HEADER}\n{ref},Tata,Nexon,2024,1499.00,INR,car.png,true\n")
    assert cli.json("cars", "import", str(path), "--images-dir", str(images))["imported"]

    path.write_text(f"{HEADER}\n{ref},Tata,Nexon EV,2024,1599.00,INR,car.png,true\n")
    before = cli.state()
    result = cli("cars", "import", str(path), "--images-dir", str(images))
    assert result.exit_code == 1, result.output
    assert f"line 2 ({ref}): exists with different model/price; --update" in result.stderr
    assert "skipped" not in result.stderr
    assert cli.state() == before

    updated = cli.json("cars", "import", str(path), "--images-dir", str(images), "--update")
    assert updated["updated"][0]["fields"] == ["model", "price"] and updated["imported"] == []
    after = cli.state()
    car = next(r for r in after[0] if r[-1] == ref)
    assert (car[2], car[4]) == ("Nexon EV", 159900)
    assert after[1][0][0] == before[1][0][0] + 1  # one audited update
    assert after[2] == before[2] and after[5] == before[5]  # the image is kept as it was

    again = cli.json("cars", "import", str(path), "--images-dir", str(images))
    assert [r["ref"] for r in again["skipped"]] == [ref] and again["different"] == []


# Messages of the create path ------------------------------------------------------------------
def test_adding_a_car_with_a_taken_ref_says_so_and_keeps_no_image(cli: Cli, tmp_path: Path) -> None:
    cli.login_admin()
    images = _images(tmp_path)
    ref = f"dup-{tmp_path.name[-8:]}"
    args = ["cars", "add", "--make", "Kia", "--model", "Sonet", "--year", "2023", "--price", "10",
            "--image", str(images / "car.png"), "--ref", ref]  # fmt: skip
    assert cli(*args).exit_code == 0
    before = cli.state()
    taken = cli(*args)
    assert taken.exit_code == 13
    assert _one_error_line(taken.stderr) == f"Error: a car with ref {ref} already exists"
    assert cli.state() == before


# Ctrl-C and SIGTERM, for real -----------------------------------------------------------------
def _start(cli: Cli, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "carbook_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **cli.env},
        preexec_fn=as_from_a_terminal,
    )


def _interrupt_after(
    cli: Cli, proc: subprocess.Popen[str], tag: str, cars: int, *signals: int
) -> tuple[str, str]:
    """Send ``signals`` once ``cars`` cars of ``tag`` exist (uploads are under way)."""
    query = "select count(*) from public.cars where ref like %s"
    deadline = time.monotonic() + 60
    while _count(cli, query, f"{tag}-%") < cars:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the import did not start"
        time.sleep(0.02)
    # Back to back, while rows are surely running: on a quiet machine the running rows
    # finish within milliseconds, and a later signal would find the import already over
    # (its handler put back) and end the process as the default action does.
    for sig in signals:
        proc.send_signal(sig)
    return proc.communicate(timeout=60)


def test_an_interrupted_import_leaves_no_orphan_and_the_same_command_resumes_it(
    cli: Cli, tmp_path: Path
) -> None:
    cli.login_admin()
    images = _images(tmp_path)
    tag = f"int{tmp_path.name[-6:]}"
    n = 30
    path = tmp_path / "big.csv"
    path.write_text("\n".join([HEADER, *_rows(tag, n)]) + "\n")
    orphans = _count(cli, ORPHANS)
    audit = _count(cli, "select count(*) from public.audit_logs")
    command = ["cars", "import", str(path), "--images-dir", str(images), "--concurrency", "2"]

    # Ctrl-C, then SIGTERM as an impatient user or a service manager adds: the rows
    # already running still finish; the exit code is the first signal's (128 + 2).
    proc = _start(cli, *command)
    out, err = _interrupt_after(cli, proc, tag, 3, signal.SIGINT, signal.SIGTERM)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "never awaited" not in err and "RuntimeWarning" not in err
    assert "Stopping: no new row starts" in err and "Still finishing the rows already running" in err
    done = int(re.search(r"imported\s+│\s+(\d+)", out)[1])  # type: ignore[index]
    not_started = int(re.search(r"not started\s+│\s+(\d+)", out)[1])  # type: ignore[index]
    cars = _count(cli, "select count(*) from public.cars where ref like %s", f"{tag}-%")
    assert 3 <= done == cars < n and done + not_started == n, (out, err)
    assert f"Interrupted: {not_started} row(s) not started" in err
    assert f"carbook cars import {path} --images-dir {images} --concurrency 2" in err
    assert _count(cli, ORPHANS) == orphans
    assert _count(cli, "select count(*) from public.audit_logs") == audit + cars  # one insert each

    final = cli.json(*command)
    assert final["interrupted"] is False and final["not_started"] == [] and final["failed"] == []
    assert len(final["skipped"]) == cars and len(final["imported"]) == n - cars
    assert _count(cli, "select count(*) from public.cars where ref like %s", f"{tag}-%") == n
    assert _count(cli, ORPHANS) == orphans


def test_sigterm_stops_an_import_like_ctrl_c(cli: Cli, tmp_path: Path) -> None:
    """In-process (a subprocess is tested above): the handler, the JSON report, 128 + 15."""
    cli.login_admin()
    images = _images(tmp_path)
    tag = f"term{tmp_path.name[-6:]}"
    path = tmp_path / "cars.csv"
    path.write_text("\n".join([HEADER, *_rows(tag, 4)]) + "\n")
    from carbook_cli import cars as cars_cli

    real = cars_cli.async_client

    def signalled(**kw: object) -> object:
        os.kill(os.getpid(), signal.SIGTERM)  # arrives before any row starts
        return real(**kw)  # type: ignore[arg-type]

    cars_cli.async_client = signalled  # type: ignore[assignment]
    try:
        result = cli("cars", "import", str(path), "--images-dir", str(images), "--json")
    finally:
        cars_cli.async_client = real
    assert result.exit_code == 143, result.output
    report = json.loads(result.stdout)
    assert report["interrupted"] is True and len(report["not_started"]) == 4 and report["imported"] == []
    assert report["resume"].endswith("--concurrency 4 --json")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back as it was
