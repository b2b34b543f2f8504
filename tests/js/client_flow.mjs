// A front end written with supabase-js for today's `supabase start`, run against carbook's
// stack: the publishable key, ES256 user tokens verified through the JWKS, REST, RPC,
// signed upload URLs. Prints one JSON document; tests/stack/test_supabase_js.py judges it.
import { createClient } from '@supabase/supabase-js'
// Node 20 has no WebSocket of its own (a browser does): supabase-js's Realtime needs one.
import WebSocket from 'ws'

const { API_URL, PUBLISHABLE_KEY, SECRET_KEY, CAR_ID, ADMIN_EMAIL, ADMIN_PASSWORD, PNG_BASE64, RUN } = process.env
const options = {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: WebSocket },
}
const client = () => createClient(API_URL, PUBLISHABLE_KEY, options)
const out = {}
const fail = (step, error) => {
  out.failed = { step, message: error?.message ?? String(error), code: error?.code ?? null }
  console.log(JSON.stringify(out))
  process.exit(0)
}

const winner = client()
const signUp = await winner.auth.signUp({ email: `js-winner-${RUN}@example.test`, password: 'correct-horse-9' })
if (signUp.error) fail('signUp', signUp.error)
out.user_id = signUp.data.user.id
out.identities = signUp.data.user.identities.map((i) => i.provider)

const claims = await winner.auth.getClaims()
if (claims.error) fail('getClaims', claims.error)
out.claims = { sub: claims.data.claims.sub, role: claims.data.claims.role, alg: claims.data.header.alg, kid: claims.data.header.kid }

const listed = await winner.from('cars').select('id, make').eq('id', CAR_ID)
if (listed.error) fail('select', listed.error)
out.listed = listed.data.map((c) => c.id)

const booked = await winner.rpc('book_car_atomic', { car_id: CAR_ID })
if (booked.error) fail('rpc', booked.error)
out.booked = booked.data

const loser = client()
const second = await loser.auth.signUp({ email: `js-loser-${RUN}@example.test`, password: 'correct-horse-9' })
if (second.error) fail('signUp 2', second.error)
const lost = await loser.rpc('book_car_atomic', { car_id: CAR_ID })
if (lost.error) fail('rpc 2', lost.error)
out.lost = lost.data

const anonymous = await client().auth.signInAnonymously()
out.anonymous_error = anonymous.error ? { code: anonymous.error.code, status: anonymous.error.status } : null

const admin = client()
const signIn = await admin.auth.signInWithPassword({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD })
if (signIn.error) fail('signIn admin', signIn.error)
const path = `js/${RUN}.png`
const signed = await admin.storage.from('car-images').createSignedUploadUrl(path)
if (signed.error) fail('createSignedUploadUrl', signed.error)
// The browser holds only the publishable key and the signed URL's token.
const bytes = Buffer.from(PNG_BASE64, 'base64')
const uploaded = await client()
  .storage.from('car-images')
  .uploadToSignedUrl(signed.data.path, signed.data.token, new Blob([bytes], { type: 'image/png' }), { contentType: 'image/png' })
if (uploaded.error) fail('uploadToSignedUrl', uploaded.error)
out.uploaded_path = uploaded.data.path
const again = await client()
  .storage.from('car-images')
  .uploadToSignedUrl(signed.data.path, signed.data.token, new Blob([bytes], { type: 'image/png' }), { contentType: 'image/png' })
out.reuse_refused = again.error !== null
const publicUrl = client().storage.from('car-images').getPublicUrl(path).data.publicUrl
const fetched = await fetch(publicUrl)
const body = Buffer.from(await fetched.arrayBuffer())
out.public = { status: fetched.status, same: body.equals(bytes), type: fetched.headers.get('content-type') }

// Server code keeps the secret key (only a browser is refused it): Node is a server.
const service = createClient(API_URL, SECRET_KEY, options)
const listed_users = await service.auth.admin.listUsers({ page: 1, perPage: 1 })
out.secret_from_node = listed_users.error ? { error: listed_users.error.message } : { users: listed_users.data.users.length }

console.log(JSON.stringify(out))
