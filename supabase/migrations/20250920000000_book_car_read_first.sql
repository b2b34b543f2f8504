-- book_car_atomic answers latecomers without queueing on the row lock.
--
-- Same signature, SECURITY DEFINER, search_path, grants, return shape and codes as
-- 20250916010000; only the order changes: read the car first without a lock, and take
-- the row lock only when the car looks published and available.
--
-- Why an unlocked "already booked" is safe under READ COMMITTED: a committed booking is
-- final for this function (only an admin's audited update or a rollback makes a car
-- available again), so a caller that sees it booked may be told so at once, as it would
-- have been after waiting for the lock. Every path that books decides again on the
-- locked row: a car that looked available but was won meanwhile is answered from the
-- row as the winner left it.

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
  v_locked boolean := false;
begin
  if v_uid is null then
    return pg_catalog.jsonb_build_object(
      'success', false, 'code', 'not_authenticated',
      'message', 'Sign in to book a car.',
      'car_id', book_car_atomic.car_id, 'booked_by', null, 'booked_at', null);
  end if;

  -- Two passes over one decision: first on the row as last committed (no lock, so
  -- latecomers never queue), then, only for a car that looked bookable, on the locked
  -- row, where concurrent callers for this car queue and each decides on the row as the
  -- previous holder left it.
  loop
    if v_locked then
      select c.id, c.is_published, c.booking_status, c.booked_by, c.booked_at
        into v_car
        from public.cars c
       where c.id = book_car_atomic.car_id
         for update;
    else
      select c.id, c.is_published, c.booking_status, c.booked_by, c.booked_at
        into v_car
        from public.cars c
       where c.id = book_car_atomic.car_id;
    end if;

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

    exit when v_locked;  -- published, available and ours to book
    v_locked := true;
  end loop;

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
  'Reads first and locks the row only for a car that looks bookable (migration 20250920000000). '
  'SECURITY DEFINER executable by authenticated: intended (splinter 0029), the caller comes only from the JWT.';

revoke execute on function public.book_car_atomic(uuid) from public, anon;
grant execute on function public.book_car_atomic(uuid) to authenticated, service_role;
