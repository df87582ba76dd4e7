-- One database per service; each service owns its own and no other.
CREATE DATABASE jetsaga_order;
CREATE DATABASE jetsaga_payment;
CREATE DATABASE jetsaga_stock;
CREATE DATABASE jetsaga_voucher;
