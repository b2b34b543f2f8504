-- The audit trail is append-only for every API role, service_role included. service_role
-- bypasses row-level security, so only its table privileges can keep it from rewriting
-- or erasing history. Audit rows are written by SECURITY DEFINER code in the database
-- (the cars trigger and book_car_atomic), which this does not touch.

revoke insert, update, delete, truncate on public.audit_logs from service_role;
