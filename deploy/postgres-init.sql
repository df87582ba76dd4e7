-- The five service databases and their roles. The postgres image runs this once, with psql as
-- the superuser, when its data directory is empty (docker-compose.yml mounts it into
-- /docker-entrypoint-initdb.d); elsewhere run it the same way:
--   psql -v ON_ERROR_STOP=1 -U postgres -d postgres -f deploy/postgres-init.sql
--
-- One login role per service owns that service's database and its schema `public`, so the
-- service's migrations (run at start-up, as that role) can create its tables; no other role may
-- even connect to it. `reconciler` may connect to all five and only read, also the tables the
-- migrations create later (default privileges): `jetsaga reconcile` checks the invariants with it.
--
-- Passwords come from the environment of psql when set, else the development defaults below:
--   JETSAGA_PG_ORDER_PASSWORD, JETSAGA_PG_PAYMENT_PASSWORD, JETSAGA_PG_STOCK_PASSWORD,
--   JETSAGA_PG_VOUCHER_PASSWORD, JETSAGA_PG_POINTS_PASSWORD, JETSAGA_PG_RECONCILER_PASSWORD
-- (psql 15 or newer, for \getenv). Any characters: psql quotes them here, and compose gives each
-- service its password as PGPASSWORD, outside DATABASE_URL. scripts/check-deploy runs this file.
\set ON_ERROR_STOP on

\getenv order_password JETSAGA_PG_ORDER_PASSWORD
\if :{?order_password}
\else
    \set order_password order-dev-only
\endif
\getenv payment_password JETSAGA_PG_PAYMENT_PASSWORD
\if :{?payment_password}
\else
    \set payment_password payment-dev-only
\endif
\getenv stock_password JETSAGA_PG_STOCK_PASSWORD
\if :{?stock_password}
\else
    \set stock_password stock-dev-only
\endif
\getenv voucher_password JETSAGA_PG_VOUCHER_PASSWORD
\if :{?voucher_password}
\else
    \set voucher_password voucher-dev-only
\endif
\getenv points_password JETSAGA_PG_POINTS_PASSWORD
\if :{?points_password}
\else
    \set points_password points-dev-only
\endif
\getenv reconciler_password JETSAGA_PG_RECONCILER_PASSWORD
\if :{?reconciler_password}
\else
    \set reconciler_password reconciler-dev-only
\endif

-- The roles: no superuser, no CREATEDB, no CREATEROLE (the defaults).
CREATE ROLE order_service LOGIN PASSWORD :'order_password';
CREATE ROLE payment_service LOGIN PASSWORD :'payment_password';
CREATE ROLE stock_service LOGIN PASSWORD :'stock_password';
CREATE ROLE voucher_service LOGIN PASSWORD :'voucher_password';
CREATE ROLE points_service LOGIN PASSWORD :'points_password';
CREATE ROLE reconciler LOGIN PASSWORD :'reconciler_password';
-- Read-only even where a privilege would allow more.
ALTER ROLE reconciler SET default_transaction_read_only = on;

-- One database per service, owned by its role. PUBLIC loses CONNECT (and TEMP): only the owner
-- (and the reconciler, to read) may connect.
CREATE DATABASE jetsaga_order OWNER order_service;
CREATE DATABASE jetsaga_payment OWNER payment_service;
CREATE DATABASE jetsaga_stock OWNER stock_service;
CREATE DATABASE jetsaga_voucher OWNER voucher_service;
CREATE DATABASE jetsaga_points OWNER points_service;
REVOKE ALL ON DATABASE jetsaga_order, jetsaga_payment, jetsaga_stock, jetsaga_voucher,
    jetsaga_points FROM PUBLIC;
GRANT CONNECT ON DATABASE jetsaga_order, jetsaga_payment, jetsaga_stock, jetsaga_voucher,
    jetsaga_points TO reconciler;

-- In each database: the service's role owns schema public (PostgreSQL 15 no longer lets everyone
-- create in it), nobody else may use it but the reconciler, who may read every table and
-- sequence the service's migrations create.
\connect jetsaga_order
ALTER SCHEMA public OWNER TO order_service;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO reconciler;
ALTER DEFAULT PRIVILEGES FOR ROLE order_service IN SCHEMA public
    GRANT SELECT ON TABLES TO reconciler;
ALTER DEFAULT PRIVILEGES FOR ROLE order_service IN SCHEMA public
    GRANT SELECT ON SEQUENCES TO reconciler;

\connect jetsaga_payment
ALTER SCHEMA public OWNER TO payment_service;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO reconciler;
ALTER DEFAULT PRIVILEGES FOR ROLE payment_service IN SCHEMA public
    GRANT SELECT ON TABLES TO reconciler;
ALTER DEFAULT PRIVILEGES FOR ROLE payment_service IN SCHEMA public
    GRANT SELECT ON SEQUENCES TO reconciler;

\connect jetsaga_stock
ALTER SCHEMA public OWNER TO stock_service;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO reconciler;
ALTER DEFAULT PRIVILEGES FOR ROLE stock_service IN SCHEMA public
    GRANT SELECT ON TABLES TO reconciler;
ALTER DEFAULT PRIVILEGES FOR ROLE stock_service IN SCHEMA public
    GRANT SELECT ON SEQUENCES TO reconciler;

\connect jetsaga_voucher
ALTER SCHEMA public OWNER TO voucher_service;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO reconciler;
ALTER DEFAULT PRIVILEGES FOR ROLE voucher_service IN SCHEMA public
    GRANT SELECT ON TABLES TO reconciler;
ALTER DEFAULT PRIVILEGES FOR ROLE voucher_service IN SCHEMA public
    GRANT SELECT ON SEQUENCES TO reconciler;

\connect jetsaga_points
ALTER SCHEMA public OWNER TO points_service;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO reconciler;
ALTER DEFAULT PRIVILEGES FOR ROLE points_service IN SCHEMA public
    GRANT SELECT ON TABLES TO reconciler;
ALTER DEFAULT PRIVILEGES FOR ROLE points_service IN SCHEMA public
    GRANT SELECT ON SEQUENCES TO reconciler;
