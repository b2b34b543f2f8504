// postgres_changes as an app written for `supabase start` uses them, with supabase-js as
// pinned (vsn 2.0.0): an admin listens to INSERT, UPDATE (filtered by id), DELETE and `*`
// (filtered by model) on public.cars and changes cars through the API; a signed-in user
// listens to `*` and must not hear the unpublished car. Prints one JSON document;
// tests/stack/test_supabase_js.py judges it.
import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'

const { API_URL, PUBLISHABLE_KEY, CAR_ID, RUN, ADMIN_EMAIL, ADMIN_PASSWORD, USER_EMAIL, USER_PASSWORD } = process.env
const options = {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: WebSocket },
}
const out = { heard: { ins: [], upd: [], del: [], all: [], user: [] } }
const clients = []
const done = async (code = 0) => {
  await Promise.all(clients.map((c) => c.removeAllChannels()))
  console.log(JSON.stringify(out))
  process.exit(code)
}
const fail = async (step, error) => {
  out.failed = { step, message: error?.message ?? String(error) }
  await done()
}
const until = async (step, ok, ms = 10000) => {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`${step}: not heard within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
const signedIn = async (email, password) => {
  const c = createClient(API_URL, PUBLISHABLE_KEY, options)
  clients.push(c)
  const { data, error } = await c.auth.signInWithPassword({ email, password })
  if (error) throw error
  await c.realtime.setAuth(data.session.access_token)
  return c
}
const keep = (label) => (p) =>
  out.heard[label].push({ type: p.eventType, key: p.new?.model ?? p.old?.id, new: p.new, old: p.old, ids: p.ids })
// Subscribed means the join's reply; the changes flow once Realtime says so (`system` ok).
const listening = (channel) =>
  new Promise((resolve, reject) => {
    channel.on('system', {}, (m) => {
      if (m.extension === 'postgres_changes') (m.status === 'ok' ? resolve : reject)(new Error(m.message))
    })
    channel.subscribe((status, error) => {
      if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(error ?? new Error(status))
      else out.status = [...(out.status ?? []), status]
    })
  })

try {
  const admin = await signedIn(ADMIN_EMAIL, ADMIN_PASSWORD)
  const user = await signedIn(USER_EMAIL, USER_PASSWORD)
  const cars = { schema: 'public', table: 'cars' }
  const watching = admin
    .channel(`changes-${RUN}`)
    .on('postgres_changes', { event: 'INSERT', ...cars }, keep('ins'))
    .on('postgres_changes', { event: 'UPDATE', ...cars, filter: `id=eq.${CAR_ID}` }, keep('upd'))
    .on('postgres_changes', { event: 'DELETE', ...cars }, keep('del'))
    .on('postgres_changes', { event: '*', ...cars, filter: `model=eq.${RUN}-x` }, keep('all'))
  const listing = user.channel(`listing-${RUN}`).on('postgres_changes', { event: '*', ...cars }, keep('user'))
  await Promise.all([listening(watching), listening(listing)])

  const car = { make: 'Kia', year: 2024, image_path: 'cars/x.png', price_in_paise: 100000 }
  const hidden = await admin.from('cars').insert({ ...car, model: `${RUN}-x`, is_published: false }).select('id').single()
  if (hidden.error) throw hidden.error
  out.hidden = hidden.data.id
  const priced = await admin.from('cars').update({ price_in_paise: 123400 }).eq('id', CAR_ID)
  if (priced.error) throw priced.error
  await until('insert and update', () => out.heard.all.length === 1 && out.heard.upd.length === 1 && out.heard.user.length === 1)
  const gone = await admin.from('cars').delete().eq('id', out.hidden)
  if (gone.error) throw gone.error
  const last = await admin.from('cars').insert({ ...car, model: `${RUN}-s`, is_published: true })
  if (last.error) throw last.error
  await until('the last insert', () =>
    [out.heard.ins, out.heard.user].every((h) => h.some((e) => e.key === `${RUN}-s`)))
  await done()
} catch (error) {
  await fail('changes', error)
}
