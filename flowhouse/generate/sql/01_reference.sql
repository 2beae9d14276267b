-- Reference data: time zones, categories, names, and weighted-pick slot lists.

-- Time zones weighted like a US/EU-centric store. conversion_zone is what local times are converted
-- with (the store default, UTC, where the customer's zone is missing or invalid); std_offset_min is
-- the standard offset, used where an hour of error does not matter (delivery times).
create or replace temp table gen_zones as
select * from (values
    (1, 'America/New_York', 'America/New_York', 'US', 15.0, -300, '1', 10),
    (2, 'America/Chicago', 'America/Chicago', 'US', 9.0, -360, '1', 10),
    (3, 'America/Denver', 'America/Denver', 'US', 3.0, -420, '1', 10),
    (4, 'America/Phoenix', 'America/Phoenix', 'US', 1.5, -420, '1', 10),
    (5, 'America/Los_Angeles', 'America/Los_Angeles', 'US', 9.0, -480, '1', 10),
    (6, 'America/Anchorage', 'America/Anchorage', 'US', 0.4, -540, '1', 10),
    (7, 'Pacific/Honolulu', 'Pacific/Honolulu', 'US', 0.4, -600, '1', 10),
    (8, 'America/Toronto', 'America/Toronto', 'CA', 3.5, -300, '1', 10),
    (9, 'America/Vancouver', 'America/Vancouver', 'CA', 1.2, -480, '1', 10),
    (10, 'America/Halifax', 'America/Halifax', 'CA', 0.5, -240, '1', 10),
    (11, 'America/St_Johns', 'America/St_Johns', 'CA', 0.8, -210, '1', 10),
    (12, 'America/Mexico_City', 'America/Mexico_City', 'MX', 1.5, -360, '52', 10),
    (13, 'America/Sao_Paulo', 'America/Sao_Paulo', 'BR', 1.2, -180, '55', 11),
    (14, 'Europe/London', 'Europe/London', 'GB', 9.0, 0, '44', 10),
    (15, 'Europe/Dublin', 'Europe/Dublin', 'IE', 1.5, 0, '353', 9),
    (16, 'Europe/Paris', 'Europe/Paris', 'FR', 4.5, 60, '33', 9),
    (17, 'Europe/Berlin', 'Europe/Berlin', 'DE', 6.0, 60, '49', 11),
    (18, 'Europe/Madrid', 'Europe/Madrid', 'ES', 2.5, 60, '34', 9),
    (19, 'Europe/Amsterdam', 'Europe/Amsterdam', 'NL', 2.0, 60, '31', 9),
    (20, 'Europe/Stockholm', 'Europe/Stockholm', 'SE', 1.2, 60, '46', 9),
    (21, 'Europe/Warsaw', 'Europe/Warsaw', 'PL', 1.2, 60, '48', 9),
    (22, 'Europe/Athens', 'Europe/Athens', 'GR', 0.6, 120, '30', 10),
    (23, 'Asia/Kolkata', 'Asia/Kolkata', 'IN', 3.0, 330, '91', 10),
    (24, 'Asia/Kathmandu', 'Asia/Kathmandu', 'NP', 0.5, 345, '977', 10),
    (25, 'Asia/Tokyo', 'Asia/Tokyo', 'JP', 1.2, 540, '81', 10),
    (26, 'Asia/Singapore', 'Asia/Singapore', 'SG', 0.8, 480, '65', 8),
    (27, 'Australia/Sydney', 'Australia/Sydney', 'AU', 2.5, 600, '61', 9),
    (28, 'Australia/Adelaide', 'Australia/Adelaide', 'AU', 0.8, 570, '61', 9),
    (29, 'Pacific/Auckland', 'Pacific/Auckland', 'NZ', 0.8, 720, '64', 9),
    (30, '', 'UTC', 'US', 1.2, 0, '1', 10),
    (31, null, 'UTC', 'DE', 0.8, 0, '49', 11),
    (32, 'Mars/Olympus', 'UTC', 'GB', 0.4, 0, '44', 10)
) as t(zone_idx, timezone, conversion_zone, country, weight, std_offset_min, calling_code, number_digits);

-- Twelve categories: price range, gross margin, and whether it is a consumable (replenished,
-- subscribed to).
create or replace temp table gen_categories as
select * from (values
    (1, 'apparel', 14.0, 15, 120, 0.55, false,
        ['Tee', 'Hoodie', 'Jacket', 'Dress', 'Jeans', 'Sweater', 'Shirt'],
        ['t-shirt', 'hoodie', 'rain jacket', 'linen dress', 'jeans']),
    (2, 'shoes', 8.0, 40, 180, 0.50, false,
        ['Sneaker', 'Boot', 'Sandal', 'Loafer', 'Runner'],
        ['sneakers', 'boots', 'sandals', 'running shoes', 'loafers']),
    (3, 'accessories', 7.0, 10, 90, 0.60, false,
        ['Tote', 'Cap', 'Scarf', 'Belt', 'Wallet', 'Backpack'],
        ['tote bag', 'cap', 'scarf', 'leather belt', 'backpack']),
    (4, 'home', 8.0, 12, 250, 0.45, false,
        ['Throw', 'Cushion', 'Lamp', 'Vase', 'Rug', 'Candle'],
        ['throw blanket', 'cushion', 'floor lamp', 'vase', 'candle']),
    (5, 'kitchen', 7.0, 8, 160, 0.40, false,
        ['Mug', 'Pan', 'Knife', 'Kettle', 'Bowl Set', 'Grinder'],
        ['mug', 'frying pan', 'chef knife', 'kettle', 'grinder']),
    (6, 'beauty', 9.0, 8, 60, 0.65, true,
        ['Lipstick', 'Mascara', 'Perfume', 'Nail Polish', 'Palette'],
        ['lipstick', 'mascara', 'perfume', 'nail polish', 'eyeshadow']),
    (7, 'skincare', 8.0, 12, 80, 0.70, true,
        ['Serum', 'Moisturizer', 'Cleanser', 'Sunscreen', 'Toner'],
        ['vitamin c serum', 'moisturizer', 'cleanser', 'spf 50', 'toner']),
    (8, 'coffee', 9.0, 9, 35, 0.45, true,
        ['Espresso Beans', 'Filter Roast', 'Decaf', 'Cold Brew', 'Single Origin'],
        ['espresso', 'coffee beans', 'decaf', 'cold brew', 'ethiopia']),
    (9, 'tea', 5.0, 6, 28, 0.50, true,
        ['Green Tea', 'Earl Grey', 'Chai', 'Matcha', 'Rooibos'],
        ['green tea', 'earl grey', 'chai', 'matcha', 'herbal tea']),
    (10, 'supplements', 6.0, 15, 60, 0.60, true,
        ['Multivitamin', 'Omega-3', 'Protein', 'Magnesium', 'Probiotic'],
        ['vitamins', 'omega 3', 'protein powder', 'magnesium', 'probiotic']),
    (11, 'pet_food', 6.0, 12, 70, 0.30, true,
        ['Dog Kibble', 'Cat Food', 'Treats', 'Puppy Food', 'Senior Formula'],
        ['dog food', 'cat food', 'dog treats', 'puppy food', 'grain free']),
    (12, 'electronics', 7.0, 40, 700, 0.20, false,
        ['Headphones', 'Speaker', 'Smartwatch', 'Charger', 'E-Reader', 'Camera'],
        ['headphones', 'bluetooth speaker', 'smartwatch', 'usb c charger', 'camera'])
) as t(category_idx, category, weight, price_low, price_high, margin, is_consumable, nouns, queries);

set variable category_names = (select list(category order by category_idx) from gen_categories);

set variable category_queries = (select list(queries order by category_idx) from gen_categories);

set variable first_names = [
    'Olivia', 'Liam', 'Emma', 'Noah', 'Ava', 'Oliver', 'Sophia', 'Elijah', 'Isabella', 'James',
    'Mia', 'William', 'Amelia', 'Benjamin', 'Harper', 'Lucas', 'Evelyn', 'Henry', 'Abigail',
    'Alexander', 'Charlotte', 'Jack', 'Emily', 'Daniel', 'Ella', 'Michael', 'Grace', 'Mason', 'Chloe',
    'Ethan', 'Zoe', 'Sebastian', 'Lily', 'Mateo', 'Hannah', 'Leo', 'Nora', 'Jacob', 'Aria',
    'Samuel', 'Layla', 'David', 'Maya', 'Joseph', 'Sofia', 'Owen', 'Lucía', 'Hugo', 'Léa', 'Louis',
    'Chloé', 'Gabriel', 'Manon', 'Raphaël', 'Camille', 'Jules', 'Inès', 'Arthur', 'Lena', 'Finn',
    'Mila', 'Paul', 'Hanna', 'Felix', 'Emilia', 'Luca', 'Marie', 'Jonas', 'Anna', 'Elias', 'Sara',
    'Matteo', 'Giulia', 'Alessandro', 'Aarav', 'Ananya', 'Vivaan', 'Diya', 'Aditya', 'Priya',
    'Arjun', 'Saanvi', 'Rohan', 'Sita', 'Bikash', 'Yuki', 'Haruto', 'Sakura', 'Ren', 'Wei', 'Mei',
    'Siobhán', 'Niamh', 'Seán', 'Aoife', 'Lars', 'Astrid', 'Oskar', 'Freya', 'João', 'Ana', 'Pedro',
    'Beatriz', 'Diego', 'Valentina', 'Santiago', 'Camila', 'Aroha', 'Nikau', 'Zofia', 'Jakub',
    'Eleni', 'Nikos', 'Zoë', 'Chidi', 'Amara'
];

set variable adjectives = [
    'Classic', 'Everyday', 'Organic', 'Premium', 'Essential', 'Nordic', 'Coastal', 'Urban',
    'Vintage', 'Modern', 'Soft', 'Bold', 'Pure', 'Wild', 'Signature', 'Lightweight'
];

set variable colors = ['Black', 'White', 'Sand', 'Olive', 'Navy', 'Rust', 'Grey', 'Sage'];

-- Weighted picks as 1,000 slots, each holding the chosen index (see the pick macro).
create or replace temp macro slots_of(weights) as (
    select list(
        (select min(i) from (
            select i, sum(w) over (order by i) / sum(w) over () as upper_bound
            from (select unnest(range(1, len(weights) + 1)) as i, unnest(weights) as w)
        ) where upper_bound > (slot + 0.5) / 1000.0)
        order by slot)
    from range(1000) as s(slot)
);

set variable zone_slots = slots_of((select list(weight order by zone_idx) from gen_zones));

set variable category_slots = slots_of((select list(weight order by category_idx) from gen_categories));

-- the local hour of day a session starts: a diurnal curve (quiet at night, peaks at lunch and evening)
set variable hour_slots = slots_of([
    1.2, 0.6, 0.35, 0.25, 0.25, 0.4, 0.9, 1.8, 2.8, 3.6, 4.2, 4.6,
    5.0, 4.8, 4.4, 4.3, 4.4, 4.8, 5.6, 6.6, 7.2, 6.8, 5.0, 2.8
]);

-- Every event this run writes, before it is sorted by loaded_at into raw.events.
create or replace temp table gen_events (
    event_id varchar not null,
    customer_num bigint,
    event_type varchar not null,
    occurred_us bigint not null,
    loaded_us bigint not null,
    properties json
);
