-- Loyalty points: what the customer asked to spend (NULL when none were asked), and what the points
-- step held for the order (NULL until PointsReserved has been handled, like the discount, which now
-- arrives with it). The new cancel reason points_rejected joins the others.
ALTER TABLE orders
    ADD COLUMN points_requested BIGINT CHECK (points_requested > 0),
    ADD COLUMN points_spent     BIGINT CHECK (points_spent >= 0);

ALTER TABLE orders DROP CONSTRAINT orders_cancel_reason_check;
ALTER TABLE orders ADD CONSTRAINT orders_cancel_reason_check CHECK (cancel_reason IN
    ('voucher_rejected', 'points_rejected', 'payment_failed', 'stock_failed', 'timeout'));
