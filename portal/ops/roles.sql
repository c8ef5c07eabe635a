-- The portal's database roles on PostgreSQL: an owner that runs migrations, and the role the web
-- processes and workers use, which can neither DELETE nor TRUNCATE the audit log, nor switch its
-- triggers off (only a table's owner can). README, "Database roles", says how to use this file.
--
-- Once, as a superuser (choose real passwords; roles are per cluster, the grants per database):
--
--   CREATE ROLE portal_owner LOGIN PASSWORD 'change-me-owner';
--   CREATE ROLE portal_app   LOGIN PASSWORD 'change-me-app';
--   CREATE DATABASE portal OWNER portal_owner;
--   -- an existing database: ALTER DATABASE portal OWNER TO portal_owner; and, connected to it,
--   -- REASSIGN OWNED BY <old owner> TO portal_owner;
--   \c portal
--   ALTER SCHEMA public OWNER TO portal_owner;
--
-- Then connected to the portal's database as portal_owner (or a superuser), after the first
-- `manage.py migrate` and again after any migration that creates tables. It can be run any
-- number of times:
--
--   psql "postgres://portal_owner@db/portal" -v ON_ERROR_STOP=1 -f portal/ops/roles.sql

GRANT CONNECT ON DATABASE portal TO portal_app;
GRANT USAGE ON SCHEMA public TO portal_app;
REVOKE CREATE ON SCHEMA public FROM portal_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO portal_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO portal_app;

-- The audit log: read, append, and complete a pending attempt (UPDATE, which the append-only
-- trigger limits to that one change and to clearing a deleted user's id). Never erase.
REVOKE DELETE, TRUNCATE, REFERENCES, TRIGGER ON trunks_auditrecord FROM portal_app;

-- Tables and sequences that later migrations create get the same grants.
ALTER DEFAULT PRIVILEGES FOR ROLE portal_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO portal_app;
ALTER DEFAULT PRIVILEGES FOR ROLE portal_owner IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO portal_app;
