"""Where Auth's links may lead (``carbook_stack.auth.links.allowed_redirect``): GoTrue's
rule, the site URL's host or a pattern of ``[auth] additional_redirect_urls``, else the
site URL."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from carbook_stack.auth.links import allowed_redirect

SITE = "http://127.0.0.1:3000"
PATTERNS = ("https://app.example.com/*", "myapp://callback", "https://*.preview.example.com/**")


def _state() -> Any:
    return SimpleNamespace(settings=SimpleNamespace(site_url=SITE, additional_redirect_urls=PATTERNS))


@pytest.mark.parametrize(
    "given",
    [
        "http://127.0.0.1:3000/welcome",
        "http://127.0.0.1:8080/other-port-same-host",
        "https://app.example.com/done",
        "myapp://callback",
        "https://pr-12.preview.example.com/a/b/c",
    ],
)
def test_the_site_host_and_the_allow_list_are_kept(given: str) -> None:
    assert allowed_redirect(_state(), given) == given


@pytest.mark.parametrize(
    "given",
    [
        "http://evil.example/steal",
        "https://app.example.com/a/b",  # `*` stops at "/"
        "https://app.example.com.evil.example/x",
        "https://evil.example/?https://app.example.com/x",
        "https://a.b.preview.example.com/x",  # `*` stops at "."
        "javascript:alert(1)",
        "http://127.0.0.1:3000/\x00",
        "",
        None,
        42,
        ["http://127.0.0.1:3000"],
        "http://[::1",  # not a URL at all
    ],
)
def test_anything_else_leads_to_the_site_url(given: object) -> None:
    assert allowed_redirect(_state(), given) == SITE
