-- The console's sagas list is paged by key, newest first: each page starts strictly below the last
-- row's (created_at, order_id). This index serves that walk (backwards) with every filter, so a page
-- costs the same on the first and the thousandth page of 100,000 orders.
CREATE INDEX IF NOT EXISTS orders_created_at_order_id ON orders (created_at, order_id);

-- The console's outcomes per minute read the orders that ended recently (an ended order's last
-- change is when its saga ended).
CREATE INDEX IF NOT EXISTS orders_ended_at ON orders (updated_at) WHERE status <> 'PENDING';
