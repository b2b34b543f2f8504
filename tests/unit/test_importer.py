"""The import file reader and the row comparison, with no network: the files people have."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from carbook_sdk import Car, ValidationError
from carbook_sdk.importer import ImportFileError, ImportStop, differences, field_names, read_import_file
from tests.helpers import PNG

HEADER = "ref,make,model,year,price,currency,image,published"


def _ok(_: Path) -> None:
    return None


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "car.png").write_bytes(PNG)
    return folder


def _read(tmp_path: Path, images: Path, content: str | bytes) -> Any:
    path = tmp_path / "cars.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return read_import_file(path, images, _ok)


def test_semicolons_a_bom_crlf_and_quoted_separators_are_read_as_meant(tmp_path: Path, images: Path) -> None:
    text = (
        "\ufeff Ref;Make;Model;Year;Price;Currency;Image\r\n"
        'S-1;Tata;"Nexon; EV";2024;1,499.00;inr;car.png\r\n'
    )
    [row] = _read(tmp_path, images, text).rows
    assert (row.ref, row.car.model, row.car.price.minor_units, row.car.price.currency) == (
        "S-1",
        "Nexon; EV",
        149900,
        "INR",
    )
    assert row.published_given is False


def test_tab_separated(tmp_path: Path, images: Path) -> None:
    text = HEADER.replace(",", "\t") + "\nT-1\tTata\tNexon, EV\t2024\t10\tJPY\tcar.png\tyes\n"
    [row] = _read(tmp_path, images, text).rows
    assert (row.car.model, row.car.price.minor_units, row.car.is_published) == ("Nexon, EV", 10, True)


def test_rows_of_empty_cells_at_the_end_are_not_rows(tmp_path: Path, images: Path) -> None:
    file = _read(tmp_path, images, f"{HEADER}\nA-1,Tata,Nexon,2024,10.00,INR,car.png,\n,,,,,,,\n,,,,,,,\n")
    assert [r.ref for r in file.rows] == ["A-1"] and file.warnings == ()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("ref,make,model,year,price,currency,image,ref\n", "column ref named twice"),
        (
            f"{HEADER}\nA-1,Tata,Nexon,\uff12\uff10\uff12\uff14,10.00,INR,car.png,true\n",
            "year must be a number",
        ),
        (f"{HEADER}\nA-1,Tata,Nexon,2024,,INR,car.png,true\n", "price is empty"),
        # Excel's "CSV" where the decimal mark is a comma: semicolons, and 1,49 for 1.49.
        (
            "ref;make;model;year;price;currency;image\nA-1;Tata;Nexon;2024;1,49;INR;car.png\n",
            "did you mean 1.49?",
        ),
        (
            f"{HEADER}\nA-1,Tata,Nexon,2024,10.00,INR,../car.png,true\n",
            "a file name inside the images folder",
        ),
        (f"{HEADER}\nA-1,Tata,Nexon,2024,10.00,INR,car.png,maybe\n", "published must be true or false"),
    ],
)
def test_bad_rows_say_why(tmp_path: Path, images: Path, content: str, message: str) -> None:
    with pytest.raises((ValidationError, ImportFileError)) as err:
        _read(tmp_path, images, content)
    problems = getattr(err.value, "problems", None)
    text = problems[0].reason if problems else str(err.value)
    assert message in text


def test_utf16_says_save_as_utf8(tmp_path: Path, images: Path) -> None:
    with pytest.raises(ValidationError, match=r"is not UTF-8: line 1 .* save the file as UTF-8"):
        _read(tmp_path, images, HEADER.encode("utf-16"))


def test_an_images_path_that_is_a_file(tmp_path: Path, images: Path) -> None:
    path = tmp_path / "cars.csv"
    path.write_text(f"{HEADER}\nA-1,Tata,Nexon,2024,10.00,INR,car.png,true\n")
    with pytest.raises(ValidationError, match=r"the images folder .* is not a folder"):
        read_import_file(path, images / "car.png", _ok)


def _car(**changes: Any) -> Car:
    now = datetime.now(UTC)
    values = {"id": "1e5a9c1d-4b7d-4f2e-9a63-5d8e7c000001", "make": "Tata", "model": "Nexon", "year": 2024,
              "is_published": True, "price_in_paise": 100000, "currency": "INR", "ref": "A-1",
              "created_at": now, "updated_at": now, **changes}  # fmt: skip
    return Car.model_validate(values)


def test_differences_name_the_fields_people_know(tmp_path: Path, images: Path) -> None:
    [given] = _read(tmp_path, images, f"{HEADER}\nA-1,Tata,Nexon,2024,1000.00,USD,car.png,false\n").rows
    assert field_names(differences(_car(), given)) == ("price", "published")
    [unsaid] = _read(tmp_path, images, f"{HEADER}\nA-1,Tata,Nexon,2024,1000.00,INR,car.png,\n").rows
    assert differences(_car(is_published=False), unsaid) == {}  # no `published`: left as it is


def test_import_stop_counts_requests() -> None:
    stop = ImportStop()
    assert not stop.requested
    assert (stop.request(), stop.request(), stop.requested) == (1, 2, True)
