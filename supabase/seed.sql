-- Demo data for the local stack (`carbook stack start`, `supabase db reset`).
-- Two users, one of them an admin, and cars in several currencies: published and
-- not, one already booked. Passwords are for local development only. The cars' ids
-- differ in their first 8 characters, as tables show ids and people type them back.

insert into auth.users (id, aud, role, email, encrypted_password, email_confirmed_at,
                        raw_app_meta_data, raw_user_meta_data)
values
  ('00000000-0000-4000-8000-0000000000a1', 'authenticated', 'authenticated',
   'admin@carbook.local', extensions.crypt('carbook-admin', extensions.gen_salt('bf', 10)), now(),
   '{"provider": "email", "providers": ["email"]}', '{"name": "Demo Admin"}'),
  ('00000000-0000-4000-8000-0000000000b1', 'authenticated', 'authenticated',
   'driver@carbook.local', extensions.crypt('carbook-driver', extensions.gen_salt('bf', 10)), now(),
   '{"provider": "email", "providers": ["email"]}', '{"name": "Demo Driver"}')
on conflict (id) do nothing;

insert into public.user_roles (user_id, role)
values ('00000000-0000-4000-8000-0000000000a1', 'admin')
on conflict do nothing;

insert into public.cars (id, make, model, year, image_path, is_published, price_in_paise, currency)
values
  ('1e5a9c1d-4b7d-4f2e-9a63-5d8e7c000001', 'Maruti Suzuki', 'Swift', 2023, 'seed/swift.png', true, 149900, 'INR'),
  ('2e5a9c2d-4b7d-4f2e-9a63-5d8e7c000002', 'Tata', 'Nexon EV', 2024, 'seed/nexon.png', true, 249900, 'INR'),
  ('3e5a9c3d-4b7d-4f2e-9a63-5d8e7c000003', 'Mahindra', 'Thar', 2022, 'seed/thar.png', true, 199900, 'INR'),
  ('4e5a9c4d-4b7d-4f2e-9a63-5d8e7c000004', 'Toyota', 'Corolla', 2021, 'seed/corolla.png', true, 8500, 'JPY'),
  ('5e5a9c5d-4b7d-4f2e-9a63-5d8e7c000005', 'Honda', 'Civic', 2020, 'seed/civic.png', true, 7999, 'USD'),
  ('6e5a9c6d-4b7d-4f2e-9a63-5d8e7c000006', 'Nissan', 'Patrol', 2023, 'seed/patrol.png', true, 45500, 'KWD'),
  ('7e5a9c7d-4b7d-4f2e-9a63-5d8e7c000007', 'Hyundai', 'Creta', 2024, 'seed/creta.png', false, 179900, 'INR'),
  ('8e5a9c8d-4b7d-4f2e-9a63-5d8e7c000008', 'Kia', 'Seltos', 2023, 'seed/seltos.png', true, 189900, 'INR')
on conflict (id) do nothing;

-- One car is already taken.
update public.cars
   set booking_status = 'booked',
       booked_by = '00000000-0000-4000-8000-0000000000b1',
       booked_at = now()
 where id = '8e5a9c8d-4b7d-4f2e-9a63-5d8e7c000008'
   and booking_status = 'available';
