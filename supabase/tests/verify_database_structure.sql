-- Verifies the atomic-booking database structure, element by element.
--
--   psql "$SUPABASE_DB_URL" -v ON_ERROR_STOP=1 -f supabase/tests/verify_database_structure.sql
--
-- Fails loudly (an exception naming the check) on the first missing or wrong element.
-- `carbook db verify` runs this same file with `carbook.verify_mode = 'report'` and
-- reads every check's result from pg_temp.carbook_checks(), so the two never disagree;
-- it does all of that, and drops the function, in one transaction (a transaction
-- pooler may hand the next one to another server connection).

create or replace function pg_temp.carbook_checks()
returns table (name text, ok boolean, detail text)
language sql
stable
as $checks$
  -- Columns of every public table: type, nullability and default.
  with expected_columns (tbl, col, typ, not_null, dflt) as (
    values
      ('cars', 'id', 'uuid', true, 'gen_random_uuid()'),
      ('cars', 'make', 'text', true, null),
      ('cars', 'model', 'text', true, null),
      ('cars', 'year', 'integer', true, null),
      ('cars', 'image_path', 'text', false, null),
      ('cars', 'is_published', 'boolean', true, 'false'),
      ('cars', 'created_at', 'timestamp with time zone', true, 'now()'),
      ('cars', 'updated_at', 'timestamp with time zone', true, 'now()'),
      ('cars', 'booking_status', 'text', true, '''available''::text'),
      ('cars', 'booked_by', 'uuid', false, null),
      ('cars', 'booked_at', 'timestamp with time zone', false, null),
      ('cars', 'price_in_paise', 'bigint', true, '0'),
      ('cars', 'currency', 'text', true, '''INR''::text'),
      ('cars', 'ref', 'text', false, null),
      ('user_roles', 'user_id', 'uuid', true, null),
      ('user_roles', 'role', 'text', true, null),
      ('user_roles', 'created_at', 'timestamp with time zone', true, 'now()'),
      ('audit_logs', 'id', 'bigint', true, null),
      ('audit_logs', 'actor_id', 'uuid', false, null),
      ('audit_logs', 'action', 'text', true, null),
      ('audit_logs', 'table_name', 'text', true, null),
      ('audit_logs', 'record_id', 'uuid', false, null),
      ('audit_logs', 'old_data', 'jsonb', false, null),
      ('audit_logs', 'new_data', 'jsonb', false, null),
      ('audit_logs', 'created_at', 'timestamp with time zone', true, 'now()')
  ),
  actual_columns as (
    select c.relname::text as tbl,
           a.attname::text as col,
           pg_catalog.format_type(a.atttypid, a.atttypmod) as typ,
           a.attnotnull as not_null,
           pg_catalog.pg_get_expr(d.adbin, d.adrelid) as dflt
      from pg_catalog.pg_attribute a
      join pg_catalog.pg_class c on c.oid = a.attrelid
      left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
     where c.relnamespace = 'public'::regnamespace
       and c.relname in ('cars', 'user_roles', 'audit_logs')
       and a.attnum > 0 and not a.attisdropped
  ),
  expected_constraints (tbl, conname, contype, needle) as (
    values
      ('cars', 'cars_pkey', 'p', 'PRIMARY KEY (id)'),
      ('cars', 'cars_make_not_blank', 'c', 'make'),
      ('cars', 'cars_model_not_blank', 'c', 'model'),
      ('cars', 'cars_year_range', 'c', 'year >= 1886'),
      ('cars', 'cars_booking_status_valid', 'c', 'booking_status'),
      ('cars', 'cars_price_non_negative', 'c', 'price_in_paise >= 0'),
      ('cars', 'cars_currency_iso4217', 'c', 'currency'),
      ('cars', 'cars_booking_consistent', 'c', 'booked_at IS NOT NULL'),
      ('cars', 'cars_booked_by_fkey', 'f', 'REFERENCES auth.users(id)'),
      ('cars', 'cars_ref_format', 'c', 'ref IS NULL'),
      ('user_roles', 'user_roles_pkey', 'p', 'PRIMARY KEY (user_id, role)'),
      ('user_roles', 'user_roles_role_known', 'c', 'CHECK ((role = ''admin''::text))'),
      ('user_roles', 'user_roles_user_id_fkey', 'f', 'REFERENCES auth.users(id) ON DELETE CASCADE'),
      ('audit_logs', 'audit_logs_pkey', 'p', 'PRIMARY KEY (id)')
  ),
  expected_tables (tbl) as (
    values ('cars'), ('user_roles'), ('audit_logs')
  ),
  -- Each policy's USING and WITH CHECK expressions as PostgreSQL prints them back
  -- ($admin stands for the admin test, $permanent for "not an anonymous user"): a policy
  -- with the right name but a wider rule is a failure, not a pass.
  expected_policies (schemaname, tablename, policyname, cmd, roles, qual, with_check) as (
    select v.schemaname, v.tablename, v.policyname, v.cmd, v.roles,
           pg_catalog.replace(pg_catalog.replace(v.qual, '$admin', '( SELECT private.is_admin() AS is_admin)'),
                              '$permanent', '(((( SELECT auth.jwt() AS jwt) ->> ''is_anonymous''::text))::boolean IS NOT TRUE)'),
           pg_catalog.replace(v.with_check, '$admin', '( SELECT private.is_admin() AS is_admin)')
      from (values
      ('public', 'cars', 'cars_select_anon', 'SELECT', '{anon}',
       '(is_published AND (booking_status = ''available''::text))', null),
      ('public', 'cars', 'cars_select_authenticated', 'SELECT', '{authenticated}',
       '((is_published AND (booking_status = ''available''::text)) OR ((booked_by = ( SELECT auth.uid() AS uid)) AND $permanent) OR $admin)', null),
      ('public', 'cars', 'cars_insert_admin', 'INSERT', '{authenticated}', null, '$admin'),
      ('public', 'cars', 'cars_update_admin', 'UPDATE', '{authenticated}', '$admin', '$admin'),
      ('public', 'cars', 'cars_delete_admin', 'DELETE', '{authenticated}',
       '($admin AND (booking_status = ''available''::text))', null),
      ('public', 'user_roles', 'user_roles_select_authenticated', 'SELECT', '{authenticated}',
       '((user_id = ( SELECT auth.uid() AS uid)) OR $admin)', null),
      ('public', 'audit_logs', 'audit_logs_select_admin', 'SELECT', '{authenticated}', '$admin', null),
      ('storage', 'objects', 'car_images_select', 'SELECT', '{anon,authenticated}',
       '(bucket_id = ''car-images''::text)', null),
      ('storage', 'objects', 'car_images_insert_admin', 'INSERT', '{authenticated}',
       null, '((bucket_id = ''car-images''::text) AND $admin)'),
      ('storage', 'objects', 'car_images_update_admin', 'UPDATE', '{authenticated}',
       '((bucket_id = ''car-images''::text) AND $admin)', '((bucket_id = ''car-images''::text) AND $admin)'),
      ('storage', 'objects', 'car_images_delete_admin', 'DELETE', '{authenticated}',
       '((bucket_id = ''car-images''::text) AND $admin)', null),
      ('realtime', 'messages', 'listings_hear_car_availability', 'SELECT', '{anon,authenticated}',
       '((( SELECT realtime.topic() AS topic) = ''cars:availability''::text) AND (extension = ''broadcast''::text))', null)
      ) as v (schemaname, tablename, policyname, cmd, roles, qual, with_check)
  ),
  expected_indexes (idx, needle) as (
    values
      ('cars_available_listing_idx', 'WHERE (is_published AND (booking_status = ''available''::text))'),
      ('cars_booked_by_idx', '(booked_by)'),
      ('cars_ref_key', 'UNIQUE INDEX cars_ref_key ON public.cars USING btree (ref) WHERE (ref IS NOT NULL)'),
      ('audit_logs_record_id_idx', '(record_id, created_at DESC)'),
      ('audit_logs_actor_id_idx', '(actor_id, created_at DESC)'),
      ('audit_logs_created_at_idx', '(created_at DESC)')
  ),
  expected_triggers (tgname) as (
    values ('cars_audit'), ('cars_touch_updated_at'), ('cars_broadcast_availability')
  ),
  helper as (
    select p.prosecdef, p.proconfig, pg_catalog.md5(p.prosrc) as body_md5
      from pg_catalog.pg_proc p
     where p.oid = pg_catalog.to_regprocedure('private.is_admin()')
  ),
  fn as (
    select p.oid, p.prosecdef, p.proconfig, pg_catalog.format_type(p.prorettype, null) as rettype,
           pg_catalog.md5(p.prosrc) as body_md5
      from pg_catalog.pg_proc p
     where p.oid = pg_catalog.to_regprocedure('public.book_car_atomic(uuid)')
  ),
  -- 20250922000000: the functions that end a booking and list bookings for admins, and
  -- the helper they share (never callable through the API).
  lifecycle_fns (sig, api) as (
    values ('public.release_car(uuid,text)', true), ('public.cancel_booking(uuid)', true),
           ('public.admin_bookings()', true), ('private.end_booking(uuid,text,boolean)', false)
  ),
  lifecycle as (
    select l.sig, l.api, p.oid, p.prosecdef, p.proconfig
      from lifecycle_fns l
      left join pg_catalog.pg_proc p on p.oid = pg_catalog.to_regprocedure(l.sig)
  ),
  checks (name, ok, detail, ord) as (
    select 'column:' || e.tbl || '.' || e.col,
           a.col is not null and a.typ = e.typ and a.not_null = e.not_null
             and a.dflt is not distinct from e.dflt,
           case when a.col is null then 'missing'
                else format('type %s, not null %s, default %s', a.typ, a.not_null, coalesce(a.dflt, 'none')) end,
           1
      from expected_columns e left join actual_columns a using (tbl, col)
    union all
    select 'constraint:' || e.tbl || '.' || e.conname,
           c.oid is not null and c.contype::text = e.contype and c.convalidated
             and pg_catalog.strpos(pg_catalog.pg_get_constraintdef(c.oid), e.needle) > 0,
           coalesce(pg_catalog.pg_get_constraintdef(c.oid), 'missing'),
           2
      from expected_constraints e
      left join pg_catalog.pg_constraint c
        on c.conname = e.conname and c.conrelid = pg_catalog.to_regclass('public.' || e.tbl)
    union all
    select 'function:private.is_admin.security_definer',
           coalesce((select prosecdef and 'search_path=""' = any (proconfig) from helper), false),
           coalesce((select format('%s, %s', case when prosecdef then 'SECURITY DEFINER' else 'SECURITY INVOKER' end,
                                   coalesce(pg_catalog.array_to_string(proconfig, ', '), 'search_path not set'))
                       from helper), 'missing'),
           3
    union all
    -- The body of migration 20250921000000: false for an anonymous user whatever
    -- user_roles says. The base schema's body would make an anonymous session an admin.
    select 'function:private.is_admin.body',
           coalesce((select body_md5 = 'c2d4ec2bb2869986f07ce04dd7de3852' from helper), false),
           coalesce((select case when body_md5 = 'c2d4ec2bb2869986f07ce04dd7de3852'
                                 then 'never true for an anonymous user (20250921000000)'
                                 else 'another body (md5 ' || body_md5 || '): re-apply 20250921000000' end
                       from helper), 'missing'),
           3
    union all
    select 'grant:public.audit_logs.append_only:' || r.rolname,
           pg_catalog.to_regclass('public.audit_logs') is not null
             and not pg_catalog.has_table_privilege(r.rolname, 'public.audit_logs', 'INSERT, UPDATE, DELETE, TRUNCATE'),
           'no insert, update, delete or truncate through the API',
           4
      from (values ('anon'), ('authenticated'), ('service_role')) as r (rolname)
    union all
    select 'function:public.book_car_atomic(uuid)',
           exists (select 1 from fn where rettype = 'jsonb'),
           coalesce((select 'returns ' || rettype from fn), 'missing'),
           3
    union all
    -- The body of migration 20250921000000 (20250920000000's read first, lock only a
    -- bookable car, and no booking for an anonymous user): an older or edited body is
    -- reported, not taken on trust.
    select 'function:book_car_atomic.body',
           coalesce((select body_md5 = 'b3ba5d663e1bc936fc4d06ce63a54247' from fn), false),
           coalesce((select case when body_md5 = 'b3ba5d663e1bc936fc4d06ce63a54247'
                                 then 'reads first, locks only a bookable car, refuses anonymous users (20250921000000)'
                                 else 'another body (md5 ' || body_md5 || '): re-apply 20250921000000' end
                       from fn), 'missing'),
           3
    union all
    select 'function:book_car_atomic.security_definer',
           coalesce((select prosecdef from fn), false),
           coalesce((select case when prosecdef then 'SECURITY DEFINER' else 'SECURITY INVOKER' end from fn), 'missing'),
           3
    union all
    select 'function:book_car_atomic.search_path',
           coalesce((select 'search_path=""' = any (proconfig) from fn), false),
           coalesce((select coalesce(pg_catalog.array_to_string(proconfig, ', '), 'not set') from fn), 'missing'),
           3
    union all
    select 'function:book_car_atomic.execute:' || r.rolname,
           (select count(*) from fn) = 1
             and pg_catalog.has_function_privilege(r.rolname, 'public.book_car_atomic(uuid)', 'execute') = r.allowed,
           case when r.allowed then 'must be granted' else 'must not be granted' end,
           3
      from (values ('anon', false), ('authenticated', true)) as r (rolname, allowed)
    union all
    select 'function:book_car_atomic.execute:public',
           coalesce((select not exists (
                       select 1 from pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) x
                        where x.grantee = 0 and x.privilege_type = 'EXECUTE')
                       from pg_catalog.pg_proc p join fn on fn.oid = p.oid), false),
           'PUBLIC must not have execute',
           3
    union all
    select 'function:' || l.sig,
           l.oid is not null and 'search_path=""' = any (l.proconfig) and l.prosecdef = l.api
             and not pg_catalog.has_function_privilege('anon', l.oid, 'execute')
             and pg_catalog.has_function_privilege('authenticated', l.oid, 'execute') = l.api
             and not exists (
               select 1 from pg_catalog.pg_proc p,
                      pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) x
                where p.oid = l.oid and x.grantee = 0 and x.privilege_type = 'EXECUTE'),
           case when l.oid is null then 'missing: re-apply 20250922000000'
                else format('%s, %s; authenticated may execute: %s (expected %s); anon: %s',
                            case when l.prosecdef then 'SECURITY DEFINER' else 'SECURITY INVOKER' end,
                            coalesce(pg_catalog.array_to_string(l.proconfig, ', '), 'search_path not set'),
                            pg_catalog.has_function_privilege('authenticated', l.oid, 'execute'), l.api,
                            pg_catalog.has_function_privilege('anon', l.oid, 'execute')) end,
           3
      from lifecycle l
    union all
    select 'rls:public.' || e.tbl,
           coalesce(c.relrowsecurity, false),
           case when c.oid is null then 'table missing'
                when c.relrowsecurity then 'enabled' else 'disabled' end,
           4
      from expected_tables e
      left join pg_catalog.pg_class c on c.oid = pg_catalog.to_regclass('public.' || e.tbl)
    union all
    select 'rls:every public table',
           not exists (
             select 1 from pg_catalog.pg_class c
              where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
                and not c.relrowsecurity),
           coalesce((select 'disabled on ' || pg_catalog.string_agg(c.relname, ', ')
                       from pg_catalog.pg_class c
                      where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
                        and not c.relrowsecurity), 'enabled everywhere'),
           4
    union all
    select 'policy:' || e.schemaname || '.' || e.tablename || '.' || e.policyname,
           p.policyname is not null and p.cmd = e.cmd and p.roles::text = e.roles
             and p.permissive = 'PERMISSIVE'
             and p.qual is not distinct from e.qual and p.with_check is not distinct from e.with_check,
           coalesce(format('%s to %s using %s with check %s', p.cmd, p.roles::text,
                           coalesce(p.qual, '-'), coalesce(p.with_check, '-')), 'missing'),
           5
      from expected_policies e
      left join pg_catalog.pg_policies p
        on p.schemaname = e.schemaname and p.tablename = e.tablename and p.policyname = e.policyname
    union all
    select 'index:public.' || e.idx,
           i.indexname is not null and pg_catalog.strpos(i.indexdef, e.needle) > 0,
           coalesce(i.indexdef, 'missing'),
           6
      from expected_indexes e
      left join pg_catalog.pg_indexes i on i.schemaname = 'public' and i.indexname = e.idx
    union all
    select 'trigger:cars.' || e.tgname,
           t.oid is not null and t.tgenabled <> 'D',
           case when t.oid is null then 'missing' when t.tgenabled = 'D' then 'disabled' else 'enabled' end,
           7
      from expected_triggers e
      left join pg_catalog.pg_trigger t
        on t.tgname = e.tgname and t.tgrelid = pg_catalog.to_regclass('public.cars')
    union all
    -- 20250924000000: Realtime's postgres_changes stream the cars.
    select 'publication:supabase_realtime.public.cars',
           exists (select 1 from pg_catalog.pg_publication_tables
                    where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'cars'),
           coalesce((select case when p.puballtables then 'publishes every table' else 'publishes '
                              || coalesce((select pg_catalog.string_agg(t.schemaname || '.' || t.tablename, ', ')
                                             from pg_catalog.pg_publication_tables t where t.pubname = p.pubname),
                                          'nothing') || ': re-apply 20250924000000' end
                       from pg_catalog.pg_publication p where p.pubname = 'supabase_realtime'),
                    'no supabase_realtime publication'),
           7
    union all
    select 'bucket:car-images',
           coalesce((select b.public and b.file_size_limit = 5242880
                            and b.allowed_mime_types @> array['image/jpeg', 'image/png', 'image/webp']
                            and pg_catalog.cardinality(b.allowed_mime_types) = 3
                       from storage.buckets b where b.id = 'car-images'), false),
           coalesce((select format('public %s, limit %s, types %s', b.public, b.file_size_limit, b.allowed_mime_types)
                       from storage.buckets b where b.id = 'car-images'), 'missing'),
           8
    union all
    select 'rls:storage.objects',
           coalesce((select relrowsecurity from pg_catalog.pg_class
                      where oid = pg_catalog.to_regclass('storage.objects')), false),
           'row-level security on storage.objects',
           8
  )
  select name, ok, detail from checks order by ord, name
$checks$;

do $verify$
declare
  r record;
  n integer := 0;
begin
  if coalesce(pg_catalog.current_setting('carbook.verify_mode', true), '') = 'report' then
    return;
  end if;
  for r in select * from pg_temp.carbook_checks() loop
    if not r.ok then
      raise exception 'verify failed: % (%)', r.name, r.detail;
    end if;
    n := n + 1;
  end loop;
  raise notice 'verify ok: % checks passed', n;
end
$verify$;
