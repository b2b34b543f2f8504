"""Realtime from a page in real Chromium, with supabase-js as an app loads it (the UMD
bundle on another origin than the API): `postgres_changes` under the visitor's RLS,
Broadcast with `self` (over the socket and over REST), and Presence between two pages."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import Page

from carbook_stack.manager import LocalStack

from .conftest import add_car, open_app

# Runs in the page: a client of its own, one channel with all three extensions; resolves
# once the channel is joined and (when asked) its postgres_changes are subscribed.
JOIN = """
async ({ url, key, room, me, changes }) => {
  const client = supabase.createClient(url, key, { auth: { persistSession: false } })
  const got = (window.__got = { changes: [], broadcast: [], presence: [], system: [] })
  const channel = client.channel(room, { config: { broadcast: { self: true }, presence: { key: me } } })
  if (changes) {
    channel.on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'cars', filter: `model=eq.${room}` },
      (p) => got.changes.push({ type: p.eventType, id: p.new.id, published: p.new.is_published }))
  }
  channel
    .on('broadcast', { event: 'hi' }, (m) => got.broadcast.push(m.payload))
    .on('presence', { event: 'sync' }, () => { got.presence = Object.keys(channel.presenceState()).sort() })
    .on('system', {}, (p) => got.system.push(p))
  await new Promise((resolve, reject) => channel.subscribe((status, error) => {
    if (status === 'SUBSCRIBED') resolve()
    else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(error ?? new Error(status))
  }))
  window.__channel = channel
  return await channel.track({ looking_at: room })
}
"""


def _join(page: Page, stack: LocalStack, room: str, me: str, *, changes: bool) -> Any:
    s = stack.settings
    return page.evaluate(
        JOIN, {"url": s.api_url, "key": s.publishable_key, "room": room, "me": me, "changes": changes}
    )


def test_a_page_hears_changes_it_may_see_broadcasts_and_presence(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    room = f"browser-{uuid.uuid4().hex[:8]}"
    watcher = open_app(new_context(), web_origin, stack)
    other = open_app(new_context(), web_origin, stack)
    assert _join(watcher, stack, room, "a", changes=True) == "ok"
    watcher.wait_for_function(
        "window.__got.system.some(p => p.extension === 'postgres_changes' && p.status === 'ok')"
    )
    assert _join(other, stack, room, "b", changes=False) == "ok"

    # Presence: each page sees both.
    for page in (watcher, other):
        page.wait_for_function('JSON.stringify(window.__got.presence) === \'["a","b"]\'')

    # Broadcast: one page sends; both hear it (the sender asked for self).
    assert (
        other.evaluate("window.__channel.send({ type: 'broadcast', event: 'hi', payload: { from: 'b' } })")
        == "ok"
    )
    for page in (watcher, other):
        page.wait_for_function("window.__got.broadcast.length === 1")
        assert page.evaluate("window.__got.broadcast") == [{"from": "b"}]

    # The REST broadcast from the page, across origins (a preflight first: JSON and an apikey).
    sent = other.evaluate("window.__channel.httpSend('hi', { from: 'rest' })")
    assert sent == {"success": True}
    for page in (watcher, other):
        page.wait_for_function("window.__got.broadcast.length === 2")
        assert page.evaluate("window.__got.broadcast") == [{"from": "b"}, {"from": "rest"}]

    # postgres_changes under the visitor's RLS: a hidden car is never heard, a published one is.
    # In commit order, so the hidden one would have come first.
    add_car(stack, room, published=False)
    shown = add_car(stack, room)
    watcher.wait_for_function("window.__got.changes.length >= 1")
    watcher.wait_for_timeout(300)  # a second change, were one sent, would be here by now
    assert watcher.evaluate("window.__got.changes") == [{"type": "INSERT", "id": shown, "published": True}]

    # A page that leaves is gone from the other's Presence.
    other.evaluate("window.__channel.untrack()")
    watcher.wait_for_function("JSON.stringify(window.__got.presence) === '[\"a\"]'")
