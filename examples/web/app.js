// carbook's reference front end on supabase-js (the UMD bundle's global `supabase`).
//
// The project comes from the page's address, `?url=…&key=…`, else the local stack's
// defaults (`carbook stack start`): a browser only ever holds the publishable key.
'use strict'

const params = new URLSearchParams(location.search)
const API_URL = params.get('url') || 'http://127.0.0.1:54321'
const API_KEY = params.get('key') || 'sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH'
const BUCKET = 'car-images'
const IMAGE_TYPES = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp' }
const MAX_IMAGE_BYTES = 5 * 1024 * 1024

// The session is kept in localStorage and refreshed before it expires (supabase-js's
// defaults), so it survives a reload.
const db = supabase.createClient(API_URL, API_KEY)
const $ = (id) => document.getElementById(id)
let user = null
let refreshes = 0

function say(text, kind = 'info') {
  $('message').textContent = text
  $('message').dataset.kind = kind
}

// Money: integer minor units (paise for INR) in the database, never a float on the way.
function fractionDigits(currency) {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits
}

function formatPrice(minor, currency) {
  const digits = fractionDigits(currency)
  const text = String(minor).padStart(digits + 1, '0')
  const amount = digits ? `${text.slice(0, -digits)}.${text.slice(-digits)}` : text
  const locale = currency === 'INR' ? 'en-IN' : 'en'
  // Intl formats a decimal string exactly.
  return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(amount)
}

function toMinorUnits(text, currency) {
  const digits = fractionDigits(currency)
  const plain = text.trim().replaceAll(',', '')
  const match = /^(\d{1,15})(?:\.(\d+))?$/.exec(plain)
  if (!match || (match[2] || '').length > digits) {
    throw new Error(`"${text}" is not a price in ${currency}: write it like 1,499${digits ? '.00' : ''}`)
  }
  return Number(match[1]) * 10 ** digits + Number((match[2] || '').padEnd(digits, '0') || 0)
}

function imageUrl(path) {
  return db.storage.from(BUCKET).getPublicUrl(path).data.publicUrl
}

function carItem(car, action) {
  const li = document.createElement('li')
  li.dataset.carId = car.id
  const img = document.createElement('img')
  img.alt = `${car.make} ${car.model}`
  // A car made outside carbook (plain SQL) may have no image: it is still listed.
  if (car.image_path) img.src = imageUrl(car.image_path)
  else img.className = 'no-image'
  const title = document.createElement('div')
  title.className = 'title'
  title.textContent = `${car.make} ${car.model} (${car.year})`
  const price = document.createElement('div')
  price.className = 'price'
  price.textContent = formatPrice(car.price_in_paise, car.currency)
  li.append(img, title, price)
  if (action) li.append(action)
  return li
}

// UserCarListing ------------------------------------------------------------------------
// Every car the listing shows carries its `updated_at`: the version the live listing
// compares changes against (see "The live listing" below).
const COLUMNS = 'id, make, model, year, image_path, price_in_paise, currency, created_at, updated_at'
// Row-level security already hides what a visitor may not see; admins see every car, so
// the listing asks for the published, available ones itself.
const listed = () => db.from('cars').select(COLUMNS).eq('is_published', true).eq('booking_status', 'available')
let listingRead = Promise.resolve()

function listedItem(car) {
  const button = document.createElement('button')
  button.type = 'button'
  button.className = 'book'
  button.textContent = 'Book'
  button.addEventListener('click', () => book(car, button))
  const li = carItem(car, button)
  li.dataset.created = String(versionKey(car.created_at))
  return li
}

const shownCar = (id) => $('cars').querySelector(`li[data-car-id="${CSS.escape(id)}"]`)

function showEmpty() {
  $('no-cars').hidden = $('cars').children.length > 0
}

function loadCars() {
  // One read at a time: a read after a booking and one after a rejoin must not interleave
  // their renders, or the older could be drawn last.
  listingRead = listingRead.then(readListing, readListing)
  return listingRead
}

async function readListing() {
  // Changes heard while the read is on its way wait for it: applied first, the read
  // would draw over them with what it saw before they happened.
  heldChanges = []
  try {
    const { data, error } = await listed().order('created_at', { ascending: false })
    if (error) return say(error.message, 'error')
    for (const car of data) versions.set(car.id, versionKey(car.updated_at))
    $('cars').replaceChildren(...data.map(listedItem))
  } finally {
    const held = heldChanges
    heldChanges = null
    held.forEach(([kind, change]) => applyChange(kind, change))
    showEmpty()
  }
}

async function loadMine() {
  if (!user) return $('mine').hidden = true
  const { data, error } = await db
    .from('cars')
    .select('id, make, model, year, image_path, price_in_paise, currency')
    .eq('booked_by', user.id)
    .order('booked_at', { ascending: false })
  if (error) return say(error.message, 'error')
  $('my-cars').replaceChildren(...data.map((car) => carItem(car)))
  $('no-bookings').hidden = data.length > 0
  $('mine').hidden = false
}

// AtomicBookingFlow: one call, decided by the database under a row lock -------------------
async function book(car, button) {
  if (!user) return say('Sign in to book a car.', 'error')
  button.disabled = true
  say(`Booking the ${car.make} ${car.model}…`)
  const { data, error } = await db.rpc('book_car_atomic', { car_id: car.id })
  if (error) {
    button.disabled = false
    return say(error.message, 'error')
  }
  if (data.code === 'booked') say(`Booked: the ${car.make} ${car.model} is yours.`)
  else if (data.code === 'already_yours') say(`You have already booked the ${car.make} ${car.model}.`)
  else {
    // already_booked carries the seed's "Already booked. Be fast next time." The live
    // listing may have taken the car out while the call was on its way (no item then).
    button.closest('li')?.classList.add('booked')
    button.textContent = 'Booked'
    say(data.message, 'error')
  }
  await loadMine()
  if (data.success) await loadCars()
}

// The live listing ----------------------------------------------------------------------
// The database broadcasts every change of what the listing shows on the private Realtime
// topic `cars:availability` (migration 20250923000000_live_availability): booked,
// released, published, unpublished, price_changed, each with the car's id, whether it is
// listed now, its price and its `version` (its updated_at: a later change of a car has a
// later version). Never who booked, never make or model: a car that comes in is read
// from the API, so row-level security decides what the page learns of it.
const LIVE_TOPIC = 'cars:availability'
const LIVE_TEXT = { connecting: 'Connecting…', joined: 'Live', lost: 'Reconnecting…' }
// The version of the last change the page showed, per car (listed or not).
const versions = new Map()
// Changes heard during a read of the listing, applied after it (null: no read on its way).
let heldChanges = null
let liveChannel = null
let liveJoins = 0

// A version as microseconds since the epoch: exact, where Date keeps milliseconds only and
// two changes of a car can fall in one; and whatever time zone the database wrote it in.
function versionKey(text) {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(Z|[+-]\d\d(?::?\d\d)?)$/.exec(text || '')
  if (!m) return NaN
  const zone = m[3].length === 3 ? `${m[3]}:00` : m[3]
  return Date.parse(m[1] + zone) * 1000 + Number((m[2] || '').padEnd(6, '0'))
}

function setLive(state) {
  $('live').dataset.live = state
  $('live').textContent = LIVE_TEXT[state]
}

function hearChange(message) {
  const change = message.payload
  if (!change || typeof change.id !== 'string') return
  if (heldChanges) heldChanges.push([message.event, change])
  else applyChange(message.event, change)
}

function applyChange(kind, change) {
  const version = versionKey(change.version)
  const known = versions.get(change.id)
  // Not newer than what the page shows: the listing read already had it, or it came twice.
  const applied = known === undefined || version > known
  if (applied) {
    versions.set(change.id, version)
    const item = shownCar(change.id)
    if (!change.listed) item?.remove()
    else if (item) item.querySelector('.price').textContent = formatPrice(change.price_in_paise, change.currency)
    else showCar(change.id)
    // Our booking ended (an admin released it): "My bookings" no longer holds it.
    if (kind === 'released' && $('my-cars').querySelector(`li[data-car-id="${CSS.escape(change.id)}"]`)) loadMine()
    showEmpty()
  }
  // For whatever else on a page follows the listing (and for the browser tests).
  document.dispatchEvent(new CustomEvent('carbook:availability', { detail: { kind, change, applied } }))
}

async function showCar(id) {
  const { data: car, error } = await listed().eq('id', id).maybeSingle()
  if (error) return say(error.message, 'error')
  // Gone again, already drawn by a read of the listing, or older than a change heard
  // while it was read: the newest wins.
  if (!car || shownCar(id) || versionKey(car.updated_at) < versions.get(id)) return
  versions.set(id, versionKey(car.updated_at))
  const item = listedItem(car)
  const later = [...$('cars').children].find((li) => Number(li.dataset.created) < Number(item.dataset.created))
  $('cars').insertBefore(item, later || null)
  showEmpty()
}

async function watchListing() {
  // A private channel: Realtime asks the topic's policy on realtime.messages, with the
  // token the join carries. setAuth() puts the stored session's token (or the publishable
  // key) in it; after that supabase-js itself sends the channel the new token on sign-in,
  // on every refresh and on sign-out.
  await db.realtime.setAuth()
  const channel = db.channel(LIVE_TOPIC, { config: { private: true } })
  liveChannel = channel
  channel.on('broadcast', { event: '*' }, hearChange).subscribe(async (status) => {
    if (status === 'SUBSCRIBED') {
      // Joined first, read second: what changes from now on is heard, the read shows all
      // before it, versions drop the overlap. After a rejoin the same read brings back
      // whatever changed while the page was away.
      liveJoins += 1
      await loadCars()
      document.body.dataset.liveJoins = String(liveJoins)
      setLive('joined')
    } else if (status === 'CLOSED') {
      // The server closed the channel (its token expired, say). Phoenix never rejoins a
      // closed channel: join a new one.
      setLive('lost')
      if (liveChannel === channel) setTimeout(watchListing, 1000)
    } else {
      // CHANNEL_ERROR, TIMED_OUT: supabase-js rejoins by itself, with backoff, and the
      // rejoin's SUBSCRIBED reads the listing again.
      setLive('lost')
    }
  })
}

// Sign up, sign in, sign out --------------------------------------------------------------
async function signIn(event) {
  event.preventDefault()
  const { error } = await db.auth.signInWithPassword({ email: $('email').value, password: $('password').value })
  if (error) return say(error.message, 'error')
  say('Signed in.')
}

async function signUp() {
  const { data, error } = await db.auth.signUp({ email: $('email').value, password: $('password').value })
  if (error) return say(error.message, 'error')
  say(data.session ? 'Signed up and signed in.' : 'Signed up: confirm your email, then sign in.')
}

async function signOut() {
  const { error } = await db.auth.signOut()
  if (error) return say(error.message, 'error')
  say('Signed out.')
}

async function showUser(session) {
  user = session ? session.user : null
  $('who').textContent = user ? `Signed in as ${user.email}` : 'Not signed in'
  $('sign-out').hidden = !user
  $('auth-form').hidden = !!user
  let admin = false
  if (user) {
    const { data } = await db.from('user_roles').select('role').eq('user_id', user.id)
    admin = (data || []).some((r) => r.role === 'admin')
  }
  $('admin').hidden = !admin
  await Promise.all([loadCars(), loadMine()])
  document.body.dataset.user = user ? user.email : ''
}

// AdminCarManagement: the image first, then the row; the image goes if the row fails -----
function checkImage(file) {
  if (!file) throw new Error('Choose an image for the car.')
  if (!IMAGE_TYPES[file.type]) throw new Error(`${file.name} is not a JPEG, PNG or WebP image.`)
  if (file.size > MAX_IMAGE_BYTES) throw new Error(`${file.name} is larger than 5 MiB.`)
}

async function addCar(event) {
  event.preventDefault()
  const file = $('car-image').files[0]
  let row
  try {
    checkImage(file)
    const currency = $('car-currency').value.trim().toUpperCase()
    row = {
      make: $('car-make').value.trim(),
      model: $('car-model').value.trim(),
      year: Number($('car-year').value),
      price_in_paise: toMinorUnits($('car-price').value, currency),
      currency,
      is_published: $('car-published').checked,
    }
  } catch (error) {
    return say(error.message, 'error')
  }
  const path = `cars/${crypto.randomUUID()}.${IMAGE_TYPES[file.type]}`
  const images = db.storage.from(BUCKET)
  const uploaded = await images.upload(path, file, { contentType: file.type, cacheControl: '3600' })
  if (uploaded.error) return say(`The image was not uploaded: ${uploaded.error.message}`, 'error')
  const { data, error } = await db.from('cars').insert({ ...row, image_path: path }).select('id').single()
  if (error) {
    // No image without its car.
    await images.remove([path])
    return say(`The car was not added: ${error.message}`, 'error')
  }
  $('car-form').reset()
  say(`Added the ${row.make} ${row.model}.`)
  document.body.dataset.lastCar = data.id
  await loadCars()
}

// A signed upload URL: created by an admin, used by whoever holds it (no session) -------
let signed = null

async function createSignedUpload(event) {
  event.preventDefault()
  const { data, error } = await db.storage.from(BUCKET).createSignedUploadUrl($('signed-name').value.trim())
  if (error) return say(error.message, 'error')
  signed = data
  $('signed-url').textContent = data.signedUrl
  $('signed-upload-form').hidden = false
  say('Signed upload URL created.')
}

async function uploadToSignedUrl(event) {
  event.preventDefault()
  const file = $('signed-file').files[0]
  try {
    checkImage(file)
  } catch (error) {
    return say(error.message, 'error')
  }
  // Another client, with the publishable key and the URL's token only.
  const holder = supabase.createClient(API_URL, API_KEY, { auth: { persistSession: false, autoRefreshToken: false } })
  const { data, error } = await holder.storage
    .from(BUCKET)
    .uploadToSignedUrl(signed.path, signed.token, file, { contentType: file.type })
  if (error) return say(error.message, 'error')
  $('signed-preview').src = imageUrl(data.path)
  $('signed-preview').hidden = false
  say(`Uploaded ${data.path} with the signed URL.`)
}

// Wiring -----------------------------------------------------------------------------------
$('auth-form').addEventListener('submit', signIn)
$('sign-up').addEventListener('click', signUp)
$('sign-out').addEventListener('click', signOut)
$('car-form').addEventListener('submit', addCar)
$('signed-form').addEventListener('submit', createSignedUpload)
$('signed-upload-form').addEventListener('submit', uploadToSignedUrl)

watchListing()

db.auth.onAuthStateChange((event, session) => {
  if (event === 'TOKEN_REFRESHED') {
    // The same user with a new token: nothing on the page changes.
    refreshes += 1
    document.body.dataset.refreshes = String(refreshes)
    return
  }
  // supabase-js asks that a callback not await its calls: run them after it returns.
  setTimeout(async () => {
    await showUser(session)
    document.body.dataset.ready = 'true'
  }, 0)
})
