// Realtime as an app written for `supabase start` uses it, with supabase-js as pinned
// (its default protocol, vsn 2.0.0, unless VSN says otherwise): a listing on the private
// topic `cars:availability` hears a booking; two clients broadcast to each other and see
// each other's Presence. Prints one JSON document; tests/stack/test_supabase_js.py judges it.
import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'

const { API_URL, PUBLISHABLE_KEY, CAR_ID, RUN, VSN } = process.env
const options = {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: WebSocket, ...(VSN ? { vsn: VSN } : {}) },
}
const client = () => createClient(API_URL, PUBLISHABLE_KEY, options)
const out = {}
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
const within = (ms, step, promise) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${step}: nothing within ${ms} ms`)), ms))])
const subscribed = (channel, step) =>
  within(10000, step, new Promise((resolve, reject) => {
    channel.subscribe((status, error) => {
      if (status === 'SUBSCRIBED') resolve()
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(error ?? new Error(status))
    })
  }))

try {
  // 1. The listing: a visitor (publishable key only) on the private availability topic.
  const visitor = client()
  clients.push(visitor)
  out.vsn = visitor.realtime.vsn
  const heard = []
  let onBooked
  const booked = new Promise((resolve) => { onBooked = resolve })
  const listing = visitor
    .channel('cars:availability', { config: { private: true } })
    .on('broadcast', { event: '*' }, (message) => {
      if (message.payload?.id !== CAR_ID) return
      heard.push({ event: message.event, payload: message.payload })
      if (message.event === 'booked') onBooked()
    })
  await subscribed(listing, 'join cars:availability')

  const user = client()
  clients.push(user)
  const signUp = await user.auth.signUp({ email: `js-rt-${RUN}@example.test`, password: 'correct-horse-9' })
  if (signUp.error) await fail('signUp', signUp.error)
  const booking = await user.rpc('book_car_atomic', { car_id: CAR_ID })
  if (booking.error) await fail('rpc', booking.error)
  out.booking = booking.data.code
  await within(10000, 'hear booked', booked)
  await new Promise((r) => setTimeout(r, 300)) // a repeated event would come by now
  out.heard = heard

  // 2. Two clients in one room: Broadcast both ways (one with ack), Presence both ways.
  const a = client()
  const b = client()
  clients.push(a, b)
  const room = `room:${RUN}`
  const got = { a: [], b: [] }
  const waiters = []
  const until = (check, step) =>
    within(10000, step, new Promise((resolve) => {
      const tick = () => (check() ? resolve() : waiters.push(tick))
      tick()
    }))
  const wake = () => waiters.splice(0).forEach((w) => w())
  const open = (who, other, key) =>
    who
      .channel(room, { config: { broadcast: { self: false, ack: true }, presence: { key } } })
      .on('broadcast', { event: 'hello' }, (m) => { got[key].push(m.payload); wake() })
      .on('broadcast', { event: 'bytes' }, (m) => { got[key].push(Array.from(new Uint8Array(m.payload))); wake() })
      .on('presence', { event: 'sync' }, wake)
  const ca = open(a, b, 'a')
  const cb = open(b, a, 'b')
  await subscribed(ca, 'join room a')
  await subscribed(cb, 'join room b')
  out.track = [await ca.track({ looking_at: CAR_ID }), await cb.track({ looking_at: CAR_ID })]
  const both = (ch) => Object.keys(ch.presenceState()).sort().join(',') === 'a,b'
  await until(() => both(ca) && both(cb), 'presence sync')
  out.presence = { a: Object.keys(ca.presenceState()).sort(), b: Object.keys(cb.presenceState()).sort() }
  out.presence_meta = cb.presenceState().a[0].looking_at
  out.sent = [
    await ca.send({ type: 'broadcast', event: 'hello', payload: { from: 'a', n: 1 } }),
    await cb.send({ type: 'broadcast', event: 'hello', payload: { from: 'b', n: 2 } }),
  ]
  // Raw bytes (an ArrayBuffer): vsn 2.0.0 sends and delivers them as binary frames.
  out.sent.push(await ca.send({ type: 'broadcast', event: 'bytes', payload: new Uint8Array([0, 1, 2, 255]).buffer }))
  await until(() => got.a.length === 1 && got.b.length === 2, 'broadcast both ways')
  out.got = JSON.parse(JSON.stringify(got))

  // 3. REST broadcast, no socket: send() on a channel never joined (the batch endpoint)
  // and httpSend() (the single one) reach both members; a private send to the listing's
  // topic, which no policy lets a visitor write, is refused and heard by nobody.
  const poster = client()
  clients.push(poster)
  out.rest = [await poster.channel(room).send({ type: 'broadcast', event: 'hello', payload: { from: 'rest', n: 3 } })]
  out.rest.push(await poster.channel(room).httpSend('hello', { from: 'http', n: 4 }))
  await until(() => got.a.length === 3 && got.b.length === 4, 'REST broadcast')
  out.rest_got = { a: got.a.slice(1), b: got.b.slice(2) }
  const heardBefore = heard.length
  try {
    await poster.channel('cars:availability', { config: { private: true } }).httpSend('booked', { id: CAR_ID })
    out.private_rest = 'sent'
  } catch (error) {
    out.private_rest = error.message
  }
  await new Promise((r) => setTimeout(r, 300))
  out.heard_after_private_rest = heard.length - heardBefore
  await ca.untrack()
  await until(() => Object.keys(cb.presenceState()).join(',') === 'b', 'presence leave')
  out.after_leave = Object.keys(cb.presenceState())
} catch (error) {
  await fail('realtime', error)
}
await done()
