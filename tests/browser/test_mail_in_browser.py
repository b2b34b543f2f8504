"""Mail-based sign-in from a page in real Chromium, with supabase-js as an app loads it (on
another origin than the API, so every call is cross-origin): `signInWithOtp` and
`resetPasswordForEmail` reach the stack's mailbox, and the code signs the page in."""

from __future__ import annotations

import uuid
from typing import Any

from carbook_stack.mailbox import read_mail
from carbook_stack.manager import LocalStack

from .conftest import open_app

# Runs in the page: a client of its own, as a sign-in form would make one.
REQUEST = """
async ({ url, key, email, redirect }) => {
  const client = supabase.createClient(url, key, { auth: { persistSession: false } })
  const otp = await client.auth.signInWithOtp({ email, options: { emailRedirectTo: redirect } })
  const reset = await client.auth.resetPasswordForEmail(email, { redirectTo: redirect })
  return { otp: otp.error?.message ?? null, reset: reset.error?.message ?? null }
}
"""
VERIFY = """
async ({ url, key, email, code }) => {
  const client = supabase.createClient(url, key, { auth: { persistSession: false } })
  const { data, error } = await client.auth.verifyOtp({ email, token: code, type: 'email' })
  if (error) return { error: error.message }
  const me = await client.auth.getUser()
  return { email: me.data.user?.email ?? null, confirmed: Boolean(me.data.user?.email_confirmed_at) }
}
"""


def test_a_page_signs_in_with_a_code_from_the_local_mailbox(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    s = stack.settings
    page = open_app(new_context(), web_origin, stack)
    email = f"browser-mail-{uuid.uuid4().hex[:10]}@example.test"
    redirect = f"{s.site_url}/welcome"
    asked = page.evaluate(
        REQUEST, {"url": s.api_url, "key": s.publishable_key, "email": email, "redirect": redirect}
    )
    assert asked == {"otp": None, "reset": None}
    recovery, signup = read_mail(stack, to=email)  # newest first
    assert (signup.kind, recovery.kind, signup.redirect_to) == ("signup", "recovery", redirect)
    done = page.evaluate(
        VERIFY, {"url": s.api_url, "key": s.publishable_key, "email": email, "code": signup.otp}
    )
    assert done == {"email": email, "confirmed": True}
