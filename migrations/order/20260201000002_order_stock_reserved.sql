-- StockReserved and VoucherReserved arrive on different consumers and may be handled in either
-- order. The order confirms when it knows both: the discount (discount_cents) and this fact.
ALTER TABLE orders ADD COLUMN stock_reserved BOOLEAN NOT NULL DEFAULT false;
