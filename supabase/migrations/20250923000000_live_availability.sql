-- Live availability: the moment a car is booked, released, published, unpublished or
-- re-priced, every listing hears it, as Broadcast from the database on the private
-- Realtime topic `cars:availability`.
--
-- Why not postgres_changes: Realtime checks every change against the subscriber's RLS,
-- and under this schema's policies nobody but the booker may select a booked car; the
-- UPDATE that books a car takes the row out of every other user's view, so their
-- listings would never hear of it. The trigger below sends what any visitor may know
-- (id, booking status, price, currency; never who booked, never an unpublished car), and
-- the topic's policy lets anyone read it and nobody but the database write it (no insert
-- policy: a client's broadcast to the topic is dropped, so no page can fake a booking).
-- Runs unchanged on hosted Supabase, whose `realtime` schema has these functions.

-- updated_at becomes each row's version in commit order: with now() (the transaction's
-- start) a booking that waited on another's row lock could stamp an older time than the
-- change it followed. clock_timestamp() is read while the row lock is held, so a later
-- change of a car always has a later updated_at; watchers compare it to drop what a
-- listing already showed. An update that changes nothing still moves nothing
-- (20250922000000).
create or replace function private.touch_updated_at()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if (pg_catalog.to_jsonb(new) - 'updated_at') is distinct from (pg_catalog.to_jsonb(old) - 'updated_at') then
    new.updated_at := pg_catalog.clock_timestamp();
  end if;
  return new;
end
$$;

create or replace function private.broadcast_car_availability()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  was_listed boolean := tg_op <> 'INSERT' and old.is_published and old.booking_status = 'available';
  is_listed boolean := tg_op <> 'DELETE' and new.is_published and new.booking_status = 'available';
  car public.cars := case when tg_op = 'DELETE' then old else new end;
  kind text;
begin
  if is_listed and not was_listed then
    kind := case when tg_op = 'UPDATE' and old.is_published then 'released' else 'published' end;
  elsif was_listed and not is_listed then
    kind := case when tg_op = 'UPDATE' and new.is_published then 'booked' else 'unpublished' end;
  elsif is_listed and (old.price_in_paise, old.currency) is distinct from (new.price_in_paise, new.currency) then
    kind := 'price_changed';
  else
    return null;  -- nothing a visitor's listing shows has changed
  end if;
  perform realtime.send(
    pg_catalog.jsonb_build_object(
      'id', car.id,
      'kind', kind,
      'listed', is_listed,
      'status', car.booking_status,
      'price_in_paise', car.price_in_paise,
      'currency', car.currency,
      'version', car.updated_at
    ),
    kind,
    'cars:availability',
    true
  );
  return null;
end
$$;

revoke execute on function private.broadcast_car_availability() from public, anon, authenticated;

create trigger cars_broadcast_availability
  after insert or delete or update of booking_status, is_published, price_in_paise, currency
  on public.cars
  for each row execute function private.broadcast_car_availability();

-- Every listing may join the topic (a private channel, so Realtime asks this policy);
-- no policy lets anyone send to it.
create policy listings_hear_car_availability on realtime.messages
  for select to anon, authenticated
  using ((select realtime.topic()) = 'cars:availability' and extension = 'broadcast');
