-- The rest of a booking's life: released by an admin, cancelled by its booker, a car
-- deleted by an admin, and who booked what for admins.
--
--   * public.release_car(car_id, reason): an admin ends anyone's booking (a booker
--     calling it ends their own, as cancel_booking); public.cancel_booking(car_id): the
--     booker ends their own booking, and nobody else's. Both lock the row `for update`,
--     so a release and the bookers racing it queue on one lock: the car is released,
--     then exactly one of them wins it again. The audit row (car.released or
--     car.cancelled, with the reason) commits with the change, as car.booked does.
--     Same rules as book_car_atomic: SECURITY DEFINER, search_path = '', the caller
--     only from the JWT, an anonymous session refused, typed jsonb outcomes.
--   * public.admin_bookings(): booked cars with the booker's email, for admins only
--     (auth.users is not exposed through the API, so admins read it through this).
--   * cars_delete_admin: an admin deletes an available car; a booked one is kept until
--     released (the policy says so, so a booking that lands meanwhile wins).
--   * The audit trigger writes nothing for an update that changes nothing, and
--     updated_at moves only when something else did.
--
-- Rolled back, with the feature it builds on, by
-- supabase/rollbacks/20250916010001_rollback_atomic_booking_implementation.sql.

-- Ending a booking ------------------------------------------------------------------
create or replace function private.end_booking(p_car_id uuid, p_reason text, p_own_only boolean)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_car record;
  v_now timestamptz := pg_catalog.now();
  v_reason text := nullif(pg_catalog.btrim(p_reason), '');
  v_action text;
begin
  if v_uid is null or (select (auth.jwt() ->> 'is_anonymous')::boolean) then
    return pg_catalog.jsonb_build_object(
      'success', false, 'code', 'not_authenticated',
      'message', 'Sign in with an account to end a booking.',
      'car_id', p_car_id, 'booked_by', null, 'booked_at', null);
  end if;
  if pg_catalog.length(v_reason) > 500 then
    return pg_catalog.jsonb_build_object(
      'success', false, 'code', 'invalid_reason',
      'message', 'A reason is at most 500 characters.',
      'car_id', p_car_id, 'booked_by', null, 'booked_at', null);
  end if;

  select c.id, c.booking_status, c.booked_by, c.booked_at
    into v_car
    from public.cars c
   where c.id = p_car_id
     for update;

  if not found then
    return pg_catalog.jsonb_build_object(
      'success', false, 'code', 'not_found',
      'message', 'Car not found.',
      'car_id', p_car_id, 'booked_by', null, 'booked_at', null);
  end if;
  if v_car.booking_status <> 'booked' then
    return pg_catalog.jsonb_build_object(
      'success', false, 'code', 'not_booked',
      'message', 'This car is not booked.',
      'car_id', v_car.id, 'booked_by', null, 'booked_at', null);
  end if;

  if v_car.booked_by is not distinct from v_uid then
    v_action := 'car.cancelled';
  elsif not p_own_only and (select private.is_admin()) then
    v_action := 'car.released';
  else
    -- Who holds it is nobody else's business.
    return pg_catalog.jsonb_build_object(
      'success', false, 'code', 'not_yours',
      'message', 'This car is booked by someone else.',
      'car_id', v_car.id, 'booked_by', null, 'booked_at', null);
  end if;

  perform pg_catalog.set_config('carbook.booking_car_id', v_car.id::text, true);
  update public.cars
     set booking_status = 'available', booked_by = null, booked_at = null
   where id = v_car.id;
  perform pg_catalog.set_config('carbook.booking_car_id', '', true);

  insert into public.audit_logs (actor_id, action, table_name, record_id, old_data, new_data)
  values (
    v_uid, v_action, 'cars', v_car.id,
    pg_catalog.jsonb_build_object('booking_status', 'booked', 'booked_by', v_car.booked_by,
                                  'booked_at', v_car.booked_at),
    pg_catalog.jsonb_build_object('booking_status', 'available', 'booked_by', null, 'booked_at', null,
                                  'reason', v_reason)
  );

  return pg_catalog.jsonb_build_object(
    'success', true,
    'code', case when v_action = 'car.released' then 'released' else 'cancelled' end,
    'message', case when v_action = 'car.released' then 'Booking released.' else 'Booking cancelled.' end,
    'car_id', v_car.id, 'booked_by', v_car.booked_by, 'booked_at', v_car.booked_at,
    'ended_by', v_uid, 'ended_at', v_now, 'reason', v_reason);
end
$$;
revoke execute on function private.end_booking(uuid, text, boolean) from public;

create or replace function public.release_car(car_id uuid, reason text default null)
returns jsonb
language sql
volatile
security definer
set search_path = ''
as $$
  select private.end_booking(release_car.car_id, release_car.reason, false);
$$;

comment on function public.release_car(uuid, text) is
  'Ends a booking: an admin any booking (car.released), a booker their own (car.cancelled). '
  'Returns {success, code, message, car_id, booked_by, booked_at, ended_by, ended_at, reason}; '
  'code is released | cancelled | not_booked | not_yours | not_found | invalid_reason | not_authenticated. '
  'SECURITY DEFINER executable by authenticated: intended (splinter 0029), the caller comes only from the JWT.';

create or replace function public.cancel_booking(car_id uuid)
returns jsonb
language sql
volatile
security definer
set search_path = ''
as $$
  select private.end_booking(cancel_booking.car_id, null, true);
$$;

comment on function public.cancel_booking(uuid) is
  'Cancels the caller''s own booking (car.cancelled); anyone else''s is not_yours, also for an admin. '
  'Replies as release_car. SECURITY DEFINER executable by authenticated: intended (splinter 0029).';

revoke execute on function public.release_car(uuid, text), public.cancel_booking(uuid) from public, anon;
grant execute on function public.release_car(uuid, text), public.cancel_booking(uuid)
  to authenticated, service_role;

-- Who booked what (admins) ---------------------------------------------------------
create or replace function public.admin_bookings()
returns table (car_id uuid, make text, model text, year integer, booked_by uuid, booker_email text,
               booked_at timestamptz)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if not (select private.is_admin()) then
    raise exception 'listing bookings is for admins only' using errcode = '42501';
  end if;
  return query
    select c.id, c.make, c.model, c.year, c.booked_by, u.email::text, c.booked_at
      from public.cars c
      left join auth.users u on u.id = c.booked_by
     where c.booking_status = 'booked';
end
$$;

comment on function public.admin_bookings() is
  'Booked cars with the booker''s email, for admins (42501 for anyone else). Filter, order and page '
  'it as a table through PostgREST. SECURITY DEFINER executable by authenticated: intended (splinter 0029), '
  'it answers only when private.is_admin() is true.';

revoke execute on function public.admin_bookings() from public, anon;
grant execute on function public.admin_bookings() to authenticated, service_role;

-- Deleting a car -------------------------------------------------------------------
grant delete on public.cars to authenticated;

create policy cars_delete_admin on public.cars
  for delete to authenticated
  using ((select private.is_admin()) and booking_status = 'available');

-- No audit row, and no new updated_at, for an update that changes nothing -----------
create or replace function private.touch_updated_at()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if (pg_catalog.to_jsonb(new) - 'updated_at') is distinct from (pg_catalog.to_jsonb(old) - 'updated_at') then
    new.updated_at := pg_catalog.now();
  end if;
  return new;
end
$$;

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
  if tg_op = 'UPDATE' and pg_catalog.to_jsonb(new) = pg_catalog.to_jsonb(old) then
    return null;  -- nothing changed (publishing a published car): nothing to audit
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
