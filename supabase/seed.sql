-- Demo data for the local stack (`carbook stack start`, `supabase db reset`).
-- Two users, one of them an admin, and cars in several currencies: published and
-- not, one already booked. Passwords are for local development only.

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
  ('10000000-0000-4000-8000-000000000001', 'Maruti Suzuki', 'Swift', 2023, 'seed/swift.png', true, 149900, 'INR'),
  ('10000000-0000-4000-8000-000000000002', 'Tata', 'Nexon EV', 2024, 'seed/nexon.png', true, 249900, 'INR'),
  ('10000000-0000-4000-8000-000000000003', 'Mahindra', 'Thar', 2022, 'seed/thar.png', true, 199900, 'INR'),
  ('10000000-0000-4000-8000-000000000004', 'Toyota', 'Corolla', 2021, 'seed/corolla.png', true, 8500, 'JPY'),
  ('10000000-0000-4000-8000-000000000005', 'Honda', 'Civic', 2020, 'seed/civic.png', true, 7999, 'USD'),
  ('10000000-0000-4000-8000-000000000006', 'Nissan', 'Patrol', 2023, 'seed/patrol.png', true, 45500, 'KWD'),
  ('10000000-0000-4000-8000-000000000007', 'Hyundai', 'Creta', 2024, 'seed/creta.png', false, 179900, 'INR'),
  ('10000000-0000-4000-8000-000000000008', 'Kia', 'Seltos', 2023, 'seed/seltos.png', true, 189900, 'INR')
on conflict (id) do nothing;

-- One car is already taken.
update public.cars
   set booking_status = 'booked',
       booked_by = '00000000-0000-4000-8000-0000000000b1',
       booked_at = now()
 where id = '10000000-0000-4000-8000-000000000008'
   and booking_status = 'available';
