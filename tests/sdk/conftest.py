"""What the SDK tests share: the seeded admin, signed in, with the secret key at hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from carbook_sdk import Carbook
from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, carbook_for


@pytest.fixture
def admin(stack: LocalStack) -> Iterator[Carbook]:
    with carbook_for(stack, service=True) as cb:
        cb.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        yield cb
