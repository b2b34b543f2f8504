-- postgres_changes on the cars: Realtime streams the changes of the tables in the
-- `supabase_realtime` publication (hosted Supabase creates it empty, the local stack's
-- platform bootstrap too), each to the subscribers whose role and claims may select the
-- row. Adding public.cars lets an app written for Supabase subscribe to the cars it may
-- see; bookings are columns of public.cars, so a user's booking is a change of their car,
-- which RLS shows to them alone.
--
-- The replica identity stays DEFAULT on purpose: an UPDATE's old record then carries the
-- primary key only. With FULL it would carry the whole old row to everyone who may see the
-- new one, so releasing a car would tell every listing who had booked it.
--
-- Runs unchanged on hosted Supabase: the publication exists there, and one that already
-- publishes every table (FOR ALL TABLES) or public.cars is left as it is.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
  if not exists (
    select 1 from pg_catalog.pg_publication_tables
     where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'cars'
  ) then
    alter publication supabase_realtime add table public.cars;
  end if;
end
$$;
