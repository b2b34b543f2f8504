-- Atomic booking: a car is booked by exactly one user, however many try at once.
--
-- Adds the booking and price columns to public.cars, the listing indexes, the new
-- row-level security policies, and public.book_car_atomic(car_id uuid), which locks
-- the car row, decides, books and writes its audit row in one transaction.
-- Undone by supabase/rollbacks/20250916010001_rollback_atomic_booking_implementation.sql.

-- Columns -------------------------------------------------------------------------
alter table public.cars
  add column booking_status text not null default 'available',
  add column booked_by uuid references auth.users (id) on delete set null,
  add column booked_at timestamptz,
  -- Minor units of `currency` (paise for INR, yen for JPY, fils for KWD): never a float.
  add column price_in_paise bigint not null default 0,
  add column currency text not null default 'INR',
  add constraint cars_booking_status_valid check (booking_status in ('available', 'booked')),
  add constraint cars_price_non_negative check (price_in_paise >= 0),
  add constraint cars_currency_iso4217 check (currency ~ '^[A-Z]{3}$'),
  -- An available car carries no booking; a booked one knows when. booked_by may be
  -- null on a booked car only after its user was deleted (on delete set null).
  add constraint cars_booking_consistent check (
    (booking_status = 'available' and booked_by is null and booked_at is null)
    or (booking_status = 'booked' and booked_at is not null)
  );

comment on column public.cars.price_in_paise is 'Price in minor units of currency (ISO 4217 exponent), >= 0.';
comment on column public.cars.currency is 'ISO 4217 alphabetic code, three upper-case letters.';

-- Indexes -------------------------------------------------------------------------
-- The public listing: published, available cars, newest first, keyset-paginated.
create index cars_available_listing_idx on public.cars (created_at desc, id)
  where is_published and booking_status = 'available';
-- "My bookings", and the index every foreign key needs.
create index cars_booked_by_idx on public.cars (booked_by) where booked_by is not null;

-- Audit: the booking function writes its own audit row, so the generic trigger stays
-- out of the one update the function makes (flag set transaction-locally by it).
create or replace function private.audit_cars_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE'
     and pg_catalog.current_setting('carbook.booking_car_id', true) = new.id::text then
    return null;
  end if;
  insert into public.audit_logs (actor_id, action, table_name, record_id, old_data, new_data)
  values (
    (select auth.uid()),
    'car.' || pg_catalog.lower(tg_op),
    tg_table_name,
    coalesce(new.id, old.id),
    case when tg_op in ('UPDATE', 'DELETE') then pg_catalog.to_jsonb(old) end,
    case when tg_op in ('INSERT', 'UPDATE') then pg_catalog.to_jsonb(new) end
  );
  return null;
end
$$;

-- Row-level security --------------------------------------------------------------
drop policy cars_select_anon on public.cars;
drop policy cars_select_authenticated on public.cars;

create policy cars_select_anon on public.cars
  for select to anon
  using (is_published and booking_status = 'available');

create policy cars_select_authenticated on public.cars
  for select to authenticated
  using (
    (is_published and booking_status = 'available')
    or booked_by = (select auth.uid())
    or (select private.is_admin())
  );

-- Insert and update stay admin-only (cars_insert_admin, cars_update_admin): a
-- non-admin has no update policy at all, so booking columns change only through
-- book_car_atomic.

-- The booking function ------------------------------------------------------------
create or replace function public.book_car_atomic(car_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_car record;
  v_now timestamptz := pg_catalog.now();
begin
  if v_uid is null then
    return pg_catalog.jsonb_build_object(
      'success', false, 'code', 'not_authenticated',
      'message', 'Sign in to book a car.',
      'car_id', book_car_atomic.car_id, 'booked_by', null, 'booked_at', null);
  end if;

  -- The lock: every concurrent caller for this car queues here, and each one
  -- decides on the row as the previous holder left it.
  select c.id, c.is_published, c.booking_status, c.booked_by, c.booked_at
    into v_car
    from public.cars c
   where c.id = book_car_atomic.car_id
     for update;

  if not found then
    return pg_catalog.jsonb_build_object(
      'success', false, 'code', 'not_found',
      'message', 'Car not found.',
      'car_id', book_car_atomic.car_id, 'booked_by', null, 'booked_at', null);
  end if;

  if v_car.booking_status = 'booked' and v_car.booked_by = v_uid then
    return pg_catalog.jsonb_build_object(
      'success', true, 'code', 'already_yours',
      'message', 'You have already booked this car.',
      'car_id', v_car.id, 'booked_by', v_car.booked_by, 'booked_at', v_car.booked_at);
  end if;

  if not v_car.is_published then
    return pg_catalog.jsonb_build_object(
      'success', false, 'code', 'not_published',
      'message', 'This car is not available for booking.',
      'car_id', v_car.id, 'booked_by', null, 'booked_at', null);
  end if;

  if v_car.booking_status = 'booked' then
    -- Who holds it is nobody else's business.
    return pg_catalog.jsonb_build_object(
      'success', false, 'code', 'already_booked',
      'message', 'Already booked. Be fast next time.',
      'car_id', v_car.id, 'booked_by', null, 'booked_at', null);
  end if;

  perform pg_catalog.set_config('carbook.booking_car_id', v_car.id::text, true);
  update public.cars
     set booking_status = 'booked', booked_by = v_uid, booked_at = v_now
   where id = v_car.id;
  perform pg_catalog.set_config('carbook.booking_car_id', '', true);

  insert into public.audit_logs (actor_id, action, table_name, record_id, old_data, new_data)
  values (
    v_uid, 'car.booked', 'cars', v_car.id,
    pg_catalog.jsonb_build_object('booking_status', 'available', 'booked_by', null, 'booked_at', null),
    pg_catalog.jsonb_build_object('booking_status', 'booked', 'booked_by', v_uid, 'booked_at', v_now)
  );

  return pg_catalog.jsonb_build_object(
    'success', true, 'code', 'booked',
    'message', 'Car booked.',
    'car_id', v_car.id, 'booked_by', v_uid, 'booked_at', v_now);
end
$$;

comment on function public.book_car_atomic(uuid) is
  'Books a car for the caller (auth.uid()). Returns {success, code, message, car_id, booked_by, booked_at}; '
  'code is booked | already_yours | already_booked | not_found | not_published | not_authenticated. '
  'SECURITY DEFINER executable by authenticated: intended (splinter 0029), the caller comes only from the JWT.';

revoke execute on function public.book_car_atomic(uuid) from public, anon;
grant execute on function public.book_car_atomic(uuid) to authenticated, service_role;
