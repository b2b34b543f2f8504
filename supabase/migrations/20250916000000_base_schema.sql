-- Base schema: what the application had before the atomic-booking feature.
--
-- Cars with an image and a publish flag, the admin role, an audit trail written by the
-- database itself, the image bucket, and the original row-level security policies.
-- 20250916010000_atomic_booking_implementation.sql builds on it; its rollback
-- (supabase/rollbacks/) returns the database to exactly this state.

-- Helpers that must bypass RLS live here: PostgREST exposes only `public`.
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to anon, authenticated, service_role;

-- Cars ----------------------------------------------------------------------------
create table public.cars (
  id uuid primary key default gen_random_uuid(),
  make text not null,
  model text not null,
  year integer not null,
  image_path text,
  is_published boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint cars_make_not_blank check (length(btrim(make)) between 1 and 100),
  constraint cars_model_not_blank check (length(btrim(model)) between 1 and 100),
  constraint cars_year_range check (year between 1886 and 2100)
);
comment on table public.cars is 'Cars offered for booking. Admins write them; everyone reads the published ones.';

-- Roles ---------------------------------------------------------------------------
create table public.user_roles (
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null,
  created_at timestamptz not null default now(),
  -- The primary key also serves as the index on the foreign key (user_id leads).
  primary key (user_id, role),
  constraint user_roles_role_known check (role in ('admin'))
);
comment on table public.user_roles is 'Application roles. Granted with the service role only.';

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
revoke execute on function private.is_admin() from public;
grant execute on function private.is_admin() to anon, authenticated, service_role;

-- Audit trail ---------------------------------------------------------------------
-- Written only by SECURITY DEFINER code in this database, in the same transaction as
-- the change. actor_id deliberately has no foreign key: the trail outlives users.
create table public.audit_logs (
  id bigint generated always as identity primary key,
  actor_id uuid,
  action text not null,
  table_name text not null,
  record_id uuid,
  old_data jsonb,
  new_data jsonb,
  created_at timestamptz not null default now()
);
create index audit_logs_record_id_idx on public.audit_logs (record_id, created_at desc);
create index audit_logs_actor_id_idx on public.audit_logs (actor_id, created_at desc);
create index audit_logs_created_at_idx on public.audit_logs (created_at desc);
comment on table public.audit_logs is 'Append-only audit trail. Admins read it; nobody writes it through the API.';

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
revoke execute on function private.touch_updated_at(), private.audit_cars_change() from public;

create trigger cars_touch_updated_at
  before update on public.cars
  for each row execute function private.touch_updated_at();

create trigger cars_audit
  after insert or update or delete on public.cars
  for each row execute function private.audit_cars_change();

-- Row-level security (the original policies) -------------------------------------
alter table public.cars enable row level security;
alter table public.user_roles enable row level security;
alter table public.audit_logs enable row level security;

create policy cars_select_anon on public.cars
  for select to anon
  using (is_published);

create policy cars_select_authenticated on public.cars
  for select to authenticated
  using (is_published or (select private.is_admin()));

create policy cars_insert_admin on public.cars
  for insert to authenticated
  with check ((select private.is_admin()));

create policy cars_update_admin on public.cars
  for update to authenticated
  using ((select private.is_admin()))
  with check ((select private.is_admin()));

create policy user_roles_select_authenticated on public.user_roles
  for select to authenticated
  using (user_id = (select auth.uid()) or (select private.is_admin()));

create policy audit_logs_select_admin on public.audit_logs
  for select to authenticated
  using ((select private.is_admin()));

-- Nobody deletes cars, roles or audit rows through the API, and audit rows are never
-- updated: there are no policies for those actions, and the grants go too.
revoke delete on public.cars from anon, authenticated;
revoke insert, update, delete on public.user_roles from anon, authenticated;
revoke insert, update, delete, truncate on public.audit_logs from anon, authenticated;
revoke insert, update, delete, truncate, references, trigger on public.cars from anon;
revoke truncate on public.cars from authenticated;

-- Image bucket --------------------------------------------------------------------
-- Public read; only admins write. The limits match [storage.buckets.car-images] in
-- supabase/config.toml.
insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('car-images', 'car-images', true, 5242880, array['image/jpeg', 'image/png', 'image/webp'])
on conflict (id) do update
  set public = excluded.public,
      file_size_limit = excluded.file_size_limit,
      allowed_mime_types = excluded.allowed_mime_types;

create policy car_images_select on storage.objects
  for select to anon, authenticated
  using (bucket_id = 'car-images');

create policy car_images_insert_admin on storage.objects
  for insert to authenticated
  with check (bucket_id = 'car-images' and (select private.is_admin()));

create policy car_images_update_admin on storage.objects
  for update to authenticated
  using (bucket_id = 'car-images' and (select private.is_admin()))
  with check (bucket_id = 'car-images' and (select private.is_admin()));

create policy car_images_delete_admin on storage.objects
  for delete to authenticated
  using (bucket_id = 'car-images' and (select private.is_admin()));
