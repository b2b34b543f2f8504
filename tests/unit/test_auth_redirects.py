"""Where Auth's links may lead (``carbook_stack.auth.links.allowed_redirect``): GoTrue's
rule (``IsRedirectURLValid``): the site (scheme, host, and port unless loopback), a
loopback address, or an ``[auth] additional_redirect_urls`` pattern with a host a
browser reads the same way; anything else leads to the site URL."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from carbook_stack.auth.links import allowed_redirect

LOCAL = "http://127.0.0.1:3000"
HOSTED = "https://myapp.example.com"
PATTERNS = (
    "https://app.example.com/*",
    "myapp://callback",
    "https://*.preview.example.com/**",
    "https://*-team.vercel.app/**",
    "https://{staging,qa}.example.com/**",
    "https://pr-[0-9].example.org/",
    "http://localhost:*/**",
)


def _state(site: str) -> Any:
    return SimpleNamespace(settings=SimpleNamespace(site_url=site, additional_redirect_urls=PATTERNS))


@pytest.mark.parametrize(
    ("site", "given"),
    [
        (LOCAL, "http://127.0.0.1:3000/welcome"),
        (LOCAL, "http://127.0.0.1:8080/a-loopback-site-takes-any-port"),
        (LOCAL, "http://[::1]:5173/loopback"),
        (HOSTED, "https://myapp.example.com/welcome#keep"),
        (HOSTED, "https://app.example.com/done"),
        (HOSTED, "myapp://callback"),
        (HOSTED, "https://pr-12.preview.example.com/a/b/c"),
        (HOSTED, "https://my-team.vercel.app/x#fragment-aside"),
        (HOSTED, "https://qa.example.com/deep/path"),
        (HOSTED, "https://pr-7.example.org/"),
        (HOSTED, "http://localhost:5173/cb"),
    ],
)
def test_the_site_loopback_and_the_allow_list_are_kept(site: str, given: str) -> None:
    assert allowed_redirect(_state(site), given) == given


@pytest.mark.parametrize(
    ("site", "given"),
    [
        (LOCAL, "http://evil.example/steal"),
        (HOSTED, "http://myapp.example.com/"),  # another scheme
        (HOSTED, "https://myapp.example.com:8443/"),  # another port, not loopback
        (HOSTED, "javascript://myapp.example.com/%0aalert(1)"),
        (HOSTED, "https://app.example.com/a/b"),  # `*` stops at "/"
        (HOSTED, "https://app.example.com.evil.example/x"),
        (HOSTED, "https://evil.example/?https://app.example.com/x"),
        (HOSTED, "https://a.b.preview.example.com/x"),  # `*` stops at "."
        (HOSTED, "https://1249767034?-team.vercel.app/x"),  # a decimal IPv4 host
        (HOSTED, "https://1249767034#-team.vercel.app/x"),
        (HOSTED, "https://[2001:db8::1]?-team.vercel.app/"),  # an IP that is not loopback
        (HOSTED, "https://evilcom?-team.vercel.app/x"),  # `*` never spans "?"
        (HOSTED, "https://evil@x-team.vercel.app/"),  # nor "@"
        (HOSTED, "https://prod.example.com/x"),  # not in {staging,qa}
        (HOSTED, "https://pr-a.example.org/"),
        (HOSTED, "https://exa_mple.com/"),  # no registrable host
        (LOCAL, "javascript:alert(1)"),
        (LOCAL, "http://127.0.0.1:3000/\x00"),
        (LOCAL, "\thttp://2130706433/"),
        (LOCAL, ""),
        (LOCAL, None),
        (LOCAL, 42),
        (LOCAL, ["http://127.0.0.1:3000"]),
        (LOCAL, "http://[::1"),  # not a URL at all
        (LOCAL, "http://evil.example\\@127.0.0.1:3000/"),  # a browser reads the backslash as "/"
        (LOCAL, "http://evil.example\\.127.0.0.1:3000/"),
        (LOCAL, "http://127.0.0.1:3000@evil.example/"),  # userinfo: the host is evil.example
        (LOCAL, "http://127.0.0.1:3000 @evil.example/"),
        (HOSTED, "https://app.example.com/d\u00f6ne"),
    ],
)
def test_anything_else_leads_to_the_site_url(site: str, given: object) -> None:
    assert allowed_redirect(_state(site), given) == site
