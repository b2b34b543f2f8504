-- carbook platform bootstrap.
--
-- Creates what a hosted Supabase project already has before any project migration
-- runs: the API roles, the `auth` and `storage` schemas with the parts the project's
-- migrations and policies use, and the Supabase CLI's migration history table.
--
-- It is NOT a project migration: `carbook db migrate` applies it only to a database
-- that is not a Supabase one (see carbook_sdk.ops.Database.ensure_platform), and it is
-- idempotent, so it can run again on every start of the local stack.

-- Roles -------------------------------------------------------------------------
-- Roles and their memberships belong to the whole cluster, while the lock `migrate`
-- holds is per database: two databases of one cluster bootstrapped at once race to
-- create the same role. The loser finds its twin's role, which is the one it wanted.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    begin
      create role anon nologin noinherit;
    exception when duplicate_object or unique_violation then null;
    end;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    begin
      create role authenticated nologin noinherit;
    exception when duplicate_object or unique_violation then null;
    end;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    begin
      create role service_role nologin noinherit bypassrls;
    exception when duplicate_object or unique_violation then null;
    end;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    begin
      -- PostgREST logs in as authenticator and switches to the JWT's role.
      create role authenticator login noinherit password 'postgres';
    exception when duplicate_object or unique_violation then null;
    end;
  end if;
  if not (pg_has_role('authenticator', 'anon', 'member')
          and pg_has_role('authenticator', 'authenticated', 'member')
          and pg_has_role('authenticator', 'service_role', 'member')) then
    begin
      grant anon, authenticated, service_role to authenticator;
    exception when duplicate_object or unique_violation then null;
    end;
  end if;
end
$$;

create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;

-- Hosted Supabase grants the API roles everything in `public` and lets RLS decide;
-- revoking a grant is how a migration takes something away (as for book_car_atomic).
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;

-- auth ---------------------------------------------------------------------------
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key default gen_random_uuid(),
  aud text not null default 'authenticated',
  role text not null default 'authenticated',
  email text,
  encrypted_password text,
  email_confirmed_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb not null default '{}'::jsonb,
  raw_user_meta_data jsonb not null default '{}'::jsonb,
  is_anonymous boolean not null default false,
  banned_until timestamptz,
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index if not exists users_email_key on auth.users (lower(email)) where email is not null;
-- A database bootstrapped before the column was in the table above gets it too.
alter table auth.users add column if not exists is_anonymous boolean not null default false;

-- How a user signs in, one row per provider, as hosted Supabase keeps them: `id` is the
-- row's own key, `provider_id` the user's id at the provider (for `email`, the user's
-- id). Anonymous users have none.
create table if not exists auth.identities (
  provider_id text not null,
  user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null,
  provider text not null,
  last_sign_in_at timestamptz,
  created_at timestamptz,
  updated_at timestamptz,
  email text generated always as (lower(identity_data ->> 'email')) stored,
  id uuid primary key default gen_random_uuid(),
  constraint identities_provider_id_provider_unique unique (provider_id, provider)
);
create index if not exists identities_user_id_idx on auth.identities (user_id);
create index if not exists identities_email_idx on auth.identities (email text_pattern_ops);

create table if not exists auth.sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  not_after timestamptz
);
create index if not exists sessions_user_id_idx on auth.sessions (user_id);

create table if not exists auth.refresh_tokens (
  id bigint generated always as identity primary key,
  token text not null unique,
  user_id uuid not null references auth.users (id) on delete cascade,
  session_id uuid not null references auth.sessions (id) on delete cascade,
  revoked boolean not null default false,
  parent text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists refresh_tokens_user_id_idx on auth.refresh_tokens (user_id);
create index if not exists refresh_tokens_session_id_idx on auth.refresh_tokens (session_id);

-- The same definitions Supabase ships: claims come from the JWT that PostgREST (or the
-- gateway) puts in `request.jwt.claims` for the transaction.
create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role(), auth.email()
  to anon, authenticated, service_role;

-- storage ------------------------------------------------------------------------
create schema if not exists storage;
grant usage on schema storage to anon, authenticated, service_role;

create table if not exists storage.buckets (
  id text primary key,
  name text not null unique,
  owner uuid,
  owner_id text,
  public boolean not null default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_accessed_at timestamptz not null default now(),
  constraint objects_bucket_id_name_key unique (bucket_id, name)
);

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;

create or replace function storage.foldername(name text) returns text[]
language plpgsql immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1 : array_length(_parts, 1) - 1];
end
$$;

create or replace function storage.filename(name text) returns text
language plpgsql immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end
$$;

create or replace function storage.extension(name text) returns text
language plpgsql immutable
as $$
declare
  _parts text[];
  _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end
$$;

grant execute on function storage.foldername(text), storage.filename(text), storage.extension(text)
  to anon, authenticated, service_role;

-- The stand-in's Storage makes a signed upload URL good for one upload: the id (jti) of
-- every token spent, in the transaction that writes its object, so of two uploads with
-- one token exactly one commits. Kept until the token expires. Only the platform (the
-- stand-in's Storage) reads and writes it: no API role has any right on it.
create table if not exists storage.carbook_spent_upload_tokens (
  jti uuid primary key,
  expires_at timestamptz not null
);
alter table storage.carbook_spent_upload_tokens enable row level security;
revoke all on storage.carbook_spent_upload_tokens from anon, authenticated, service_role;

-- realtime -----------------------------------------------------------------------
-- What hosted Supabase's Realtime keeps in the project's database: `realtime.messages`
-- (Broadcast from the database, and the rows whose RLS policies authorize private
-- channels), `realtime.send()`, `realtime.broadcast_changes()`, `realtime.topic()`,
-- with Supabase's signatures, and the `supabase_realtime` publication. Unlike hosted
-- Supabase the table is not partitioned (the stand-in keeps 72 hours, as Realtime does,
-- by deleting old rows when its service starts).
create schema if not exists realtime;
grant usage on schema realtime to anon, authenticated, service_role;

create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone not null default timezone('utc', now()),
  inserted_at timestamp without time zone not null default timezone('utc', now()),
  id uuid not null default gen_random_uuid(),
  primary key (id, inserted_at)
);
create index if not exists messages_inserted_at_topic_index
  on realtime.messages (inserted_at desc, topic) where extension = 'broadcast' and private is true;
alter table realtime.messages enable row level security;
grant select, insert, update on realtime.messages to anon, authenticated, service_role;

create or replace function realtime.topic() returns text
language sql stable
as $$ select nullif(current_setting('realtime.topic', true), '')::text $$;

create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
declare
  generated_id uuid;
  final_payload jsonb;
begin
  begin
    generated_id := gen_random_uuid();
    if payload ? 'id' then
      final_payload := payload;
    else
      final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
    end if;
    execute format('set local realtime.topic to %L', topic);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (generated_id, final_payload, event, topic, private, 'broadcast');
  exception
    when others then
      raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

create or replace function realtime.broadcast_changes(
  topic_name text, event_name text, operation text, table_name text, table_schema text,
  new record, old record, level text default 'ROW')
returns void
language plpgsql
as $$
declare
  row_data jsonb := '{}'::jsonb;
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  if operation = 'INSERT' or operation = 'UPDATE' or operation = 'DELETE' then
    row_data := jsonb_build_object('old_record', old, 'record', new, 'operation', operation,
                                   'table', table_name, 'schema', table_schema);
    perform realtime.send(row_data, event_name, topic_name);
  else
    raise exception 'Unexpected operation type: %', operation;
  end if;
exception
  when others then
    raise exception 'Failed to process the row: %', sqlerrm;
end;
$$;
grant execute on function realtime.topic(), realtime.send(jsonb, text, text, boolean),
  realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  to anon, authenticated, service_role;

-- The stand-in's service hears a broadcast message when it commits (NOTIFY is
-- transactional and delivered in commit order); hosted Realtime reads the same rows by
-- logical replication. A message too large for a notification (8000 bytes) is named by
-- its id, and the service reads it. Rows written only to authorize a channel (no event)
-- are never announced.
create or replace function realtime.carbook_announce() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  note text;
begin
  if new.extension <> 'broadcast' or new.event is null then
    return null;
  end if;
  note := pg_catalog.json_build_object('id', new.id, 'topic', new.topic, 'event', new.event,
                                       'private', coalesce(new.private, false), 'payload', new.payload)::text;
  if pg_catalog.octet_length(note) > 7900 then
    note := pg_catalog.json_build_object('id', new.id, 'fetch', true)::text;
  end if;
  perform pg_catalog.pg_notify('carbook_realtime', note);
  return null;
end;
$$;
revoke execute on function realtime.carbook_announce() from public, anon, authenticated, service_role;
drop trigger if exists carbook_announce on realtime.messages;
create trigger carbook_announce after insert on realtime.messages
  for each row execute function realtime.carbook_announce();

do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;

-- Migration history, as the Supabase CLI keeps it --------------------------------
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text primary key,
  statements text[],
  name text
);

-- Marks this database as carbook-bootstrapped (and which bootstrap), so a real
-- Supabase database, which has auth and storage without this marker, is left alone.
comment on schema supabase_migrations is 'carbook platform bootstrap 4';
