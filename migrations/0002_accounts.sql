-- 0002: accounts, the panels this centre serves.
--
-- One row per DC-09 account. The receiver reads this table (as arc_app, SELECT
-- only) into memory and looks every frame's account up there, never here; it
-- reloads when told by NOTIFY arc_accounts. Administrators change it through
-- `arc account` (arc/accounts), which writes an audit row for each change.
--
-- Keys are never stored in clear: key_ciphertext is an AES-GCM box sealed with
-- a key derived from ARC_MASTER_KEY and bound to the account id (arc/secrets.py),
-- so neither a database dump nor a row copied to another account gives a key.

-- Roles are cluster-wide and 0001 creates arc_app; repeat the guard so that
-- this file also stands on a cluster where the role was dropped meanwhile.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'arc_app') THEN
        CREATE ROLE arc_app NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;
END
$$;

CREATE TABLE accounts (
    -- As the panel sends it (DC-09 §5.5.1.6: 3-16 hex digits); lookups are exact.
    account text PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    key_ciphertext bytea,                 -- NULL: no key, plain messages only
    key_format text,                      -- how the installer typed the key: hex or ascii
    link_test_seconds integer,            -- NULL: not supervised
    utc_offset_minutes integer NOT NULL DEFAULT 0,  -- for panels that send local time
    timestamp_ahead double precision,     -- NULL: the centre's default window
    timestamp_behind double precision,
    drift_action text,                    -- outside the window: nak or flag; NULL: default
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_account_format CHECK (account ~ '^[0-9A-Fa-f]{3,16}$'),
    CONSTRAINT accounts_key_format CHECK (key_format IN ('hex', 'ascii')),
    CONSTRAINT accounts_key_has_format CHECK ((key_ciphertext IS NULL) = (key_format IS NULL)),
    CONSTRAINT accounts_link_test_positive CHECK (link_test_seconds > 0),
    -- Real time zones run from UTC-12 to UTC+14.
    CONSTRAINT accounts_utc_offset_range CHECK (utc_offset_minutes BETWEEN -720 AND 840),
    -- NaN sorts above infinity in PostgreSQL: "< 'Infinity'" refuses both.
    CONSTRAINT accounts_timestamp_ahead_range
        CHECK (timestamp_ahead >= 0 AND timestamp_ahead < 'Infinity'),
    CONSTRAINT accounts_timestamp_behind_range
        CHECK (timestamp_behind >= 0 AND timestamp_behind < 'Infinity'),
    CONSTRAINT accounts_drift_action CHECK (drift_action IN ('nak', 'flag'))
);

-- "00AB" and "00ab" name the same number: two rows differing only in case would
-- be a typing mistake whose panel matches one row or the other by chance.
CREATE UNIQUE INDEX accounts_account_casefold ON accounts (upper(account));

CREATE FUNCTION arc_accounts_touch() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION arc_accounts_touch();

-- Receivers LISTEN arc_accounts and reload. Per statement, not per row: an
-- import of 10,000 rows is one notification (PostgreSQL also folds identical
-- notifications of one transaction into one), delivered at commit only.
CREATE FUNCTION arc_accounts_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('arc_accounts', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER accounts_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION arc_accounts_notify();

-- The receiver reads; changes come from administrators (the owner's role).
GRANT SELECT ON accounts TO arc_app;
