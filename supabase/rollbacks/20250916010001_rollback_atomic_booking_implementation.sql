-- carbook: undoes 20250916010000 20250920000000 20250921000000 20250922000000 20250923000000 20250924000000
-- Rollback of 20250916010000_atomic_booking_implementation.sql, and of what builds on
-- it: 20250920000000_book_car_read_first.sql (the function's read-first body, dropped
-- with the function), 20250921000000_anonymous_users_cannot_book.sql (its function
-- body and policy go with the feature's; private.is_admin() gets its original body
-- back), 20250922000000_booking_lifecycle.sql (release, cancel, the admins' booking
-- list, deleting cars, the no-op-update triggers) and 20250923000000_live_availability.sql
-- (its trigger reads the booking columns: it goes, with its function and the topic's
-- policy), and 20250924000000_realtime_postgres_changes.sql (public.cars leaves the
-- `supabase_realtime` publication, which stays, as the platform made it). `carbook db
-- rollback` removes all six history rows.
--
-- NOT a migration: it lives outside supabase/migrations/ so that `supabase db reset`
-- and `carbook db migrate` never apply it. Run it through `carbook db rollback`,
-- which backs up the booking and price data first, refuses while cars are booked
-- unless forced, and removes the migrations' history rows in the same transaction.
--
-- Afterwards the database is exactly as 20250916000000_base_schema.sql left it;
-- every car keeps its id, make, model, year, image and publish flag.

drop function if exists public.book_car_atomic(uuid);
drop function if exists public.release_car(uuid, text);
drop function if exists public.cancel_booking(uuid);
drop function if exists private.end_booking(uuid, text, boolean);
drop function if exists public.admin_bookings();

-- Nobody deletes cars through the API again (20250922000000 let admins).
drop policy if exists cars_delete_admin on public.cars;
revoke delete on public.cars from authenticated;

-- Live availability (20250923000000), before the columns its trigger reads.
drop trigger if exists cars_broadcast_availability on public.cars;
drop function if exists private.broadcast_car_availability();
drop policy if exists listings_hear_car_availability on realtime.messages;

-- postgres_changes on the cars (20250924000000); a publication of every table is left alone.
do $$
begin
  if exists (
    select 1 from pg_catalog.pg_publication_rel r
      join pg_catalog.pg_publication p on p.oid = r.prpubid
     where p.pubname = 'supabase_realtime' and r.prrelid = 'public.cars'::regclass
  ) then
    alter publication supabase_realtime drop table public.cars;
  end if;
end
$$;

drop policy if exists cars_select_anon on public.cars;
drop policy if exists cars_select_authenticated on public.cars;

drop index if exists public.cars_available_listing_idx;
drop index if exists public.cars_booked_by_idx;

alter table public.cars
  drop constraint if exists cars_booking_consistent,
  drop constraint if exists cars_booking_status_valid,
  drop constraint if exists cars_price_non_negative,
  drop constraint if exists cars_currency_iso4217,
  drop column if exists booking_status,
  drop column if exists booked_by,
  drop column if exists booked_at,
  drop column if exists price_in_paise,
  drop column if exists currency;

-- The original audit trigger function, without the booking function's exception.
create or replace function private.audit_cars_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
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

-- The original updated_at trigger function, which moves it on every update.
create or replace function private.touch_updated_at()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  new.updated_at := pg_catalog.now();
  return new;
end
$$;

-- The original admin test (20250921000000 made it false for anonymous users).
create or replace function private.is_admin()
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.user_roles ur
    where ur.user_id = (select auth.uid())
      and ur.role = 'admin'
  );
$$;

-- The original read policies.
create policy cars_select_anon on public.cars
  for select to anon
  using (is_published);

create policy cars_select_authenticated on public.cars
  for select to authenticated
  using (is_published or (select private.is_admin()));
