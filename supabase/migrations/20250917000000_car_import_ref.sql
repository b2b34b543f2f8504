-- A stable external key for cars imported from a file (`carbook cars import`), so a
-- re-run recognises the rows it already imported instead of creating them twice.

alter table public.cars
  add column ref text,
  add constraint cars_ref_format check (ref is null or ref ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$');

create unique index cars_ref_key on public.cars (ref) where ref is not null;

comment on column public.cars.ref is 'Stable key from an import file; unique when set.';
