-- Defence in depth: the API roles keep only the table privileges the policies are written
-- for. Supabase's default privileges also give them TRUNCATE, REFERENCES and TRIGGER,
-- which no client of this schema needs (and TRUNCATE is not subject to row-level security).

revoke truncate, references, trigger on public.cars, public.user_roles, public.audit_logs
  from anon, authenticated;
