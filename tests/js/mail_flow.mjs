// supabase-js's mail-based sign-in against carbook's stack, in two steps (the test reads
// the code from the stack's mailbox in between): STEP=request asks for a code and a
// password reset; STEP=verify signs in with the code. Prints one JSON document.
import { createClient } from '@supabase/supabase-js'
// Node 20 has no WebSocket of its own, and supabase-js builds its Realtime client anyway.
import WebSocket from 'ws'

const { API_URL, PUBLISHABLE_KEY, EMAIL, STEP, CODE, REDIRECT } = process.env
const client = createClient(API_URL, PUBLISHABLE_KEY, {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: WebSocket },
})
const out = {}
const fail = (step, error) => {
  out.failed = { step, message: error?.message ?? String(error), code: error?.code ?? null }
  console.log(JSON.stringify(out))
  process.exit(0)
}

if (STEP === 'request') {
  const otp = await client.auth.signInWithOtp({ email: EMAIL, options: { emailRedirectTo: REDIRECT } })
  if (otp.error) fail('signInWithOtp', otp.error)
  const stranger = await client.auth.signInWithOtp({ email: `nobody-${EMAIL}`, options: { shouldCreateUser: false } })
  out.stranger_error = stranger.error ? { code: stranger.error.code, status: stranger.error.status } : null
  const reset = await client.auth.resetPasswordForEmail(EMAIL, { redirectTo: REDIRECT })
  if (reset.error) fail('resetPasswordForEmail', reset.error)
  out.requested = true
} else {
  const verified = await client.auth.verifyOtp({ email: EMAIL, token: CODE, type: 'email' })
  if (verified.error) fail('verifyOtp', verified.error)
  out.user_email = verified.data.user.email
  out.confirmed = Boolean(verified.data.user.email_confirmed_at)
  out.has_session = Boolean(verified.data.session?.access_token)
}
console.log(JSON.stringify(out))
