-- 0006: the customer's site behind each account: where it is, its zones, whom
-- to call, and when the premises are open.
--
-- The duty operator needs these the moment an alarm comes in: the address and
-- position to send a guard to (and to rank guards by distance, beat), which
-- detector each zone is (two different technologies confirming each other
-- make an alarm far more credible than two of the same kind), the keyholders
-- to call in order (报警处置预案: call_keyholders), and the hours the site is
-- meant to be open (disarmed), so that a site left disarmed after closing, or
-- disarmed at night, is noticed (open/close supervision).
--
-- Administrators change these through `arc account site | zone | keyholders |
-- schedule` (arc/accounts/sites.py), which audits each change; the dispatcher
-- reads them as arc_app.

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

-- One row per account that has a site recorded. ON DELETE CASCADE: a site
-- means nothing without its account (accounts are disabled, not deleted, in
-- normal operation; this only keeps a hand-made cleanup from failing).
CREATE TABLE account_sites (
    account text PRIMARY KEY REFERENCES accounts (account) ON UPDATE CASCADE ON DELETE CASCADE,
    address text NOT NULL DEFAULT '',
    latitude double precision,            -- WGS-84 degrees; NULL: not known
    longitude double precision,
    beat text,                            -- patrol beat (巡逻区域), as staff.beat; NULL: none
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT account_sites_position_pair CHECK ((latitude IS NULL) = (longitude IS NULL)),
    CONSTRAINT account_sites_latitude_range CHECK (latitude BETWEEN -90 AND 90),
    CONSTRAINT account_sites_longitude_range CHECK (longitude BETWEEN -180 AND 180),
    CONSTRAINT account_sites_beat_not_blank CHECK (beat IS NULL OR btrim(beat) <> '')
);

-- A zone as the panel reports it. The dispatcher compares zones by their
-- number without leading zeros (CID sends "003", SIA "3": arc/dispatch/
-- site_state.py), so "003" and "3" may not both be rows of one account.
CREATE TABLE account_zones (
    account text NOT NULL REFERENCES accounts (account) ON UPDATE CASCADE ON DELETE CASCADE,
    zone text NOT NULL,
    name text NOT NULL DEFAULT '',
    technology text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, zone),
    CONSTRAINT account_zones_zone_format CHECK (zone ~ '^[0-9A-Za-z]{1,16}$'),
    -- The detector technologies arc.accounts.models.Technology knows; "other"
    -- is a detector that confirms nothing but itself.
    CONSTRAINT account_zones_technology CHECK (technology IN (
        'pir', 'microwave', 'dual_tech', 'door_contact', 'glass_break', 'vibration', 'beam',
        'smoke', 'heat', 'gas', 'water', 'panic_button', 'video', 'other'))
);
CREATE UNIQUE INDEX account_zones_number
    ON account_zones (account, (COALESCE(NULLIF(ltrim(zone, '0'), ''), '0')));

-- Keyholders (紧急联系人) in the order they are called: position 1 first.
CREATE TABLE account_keyholders (
    account text NOT NULL REFERENCES accounts (account) ON UPDATE CASCADE ON DELETE CASCADE,
    position smallint NOT NULL,
    name text NOT NULL,
    phone text NOT NULL,
    relation text NOT NULL DEFAULT '',
    PRIMARY KEY (account, position),
    CONSTRAINT account_keyholders_position_positive CHECK (position >= 1),
    CONSTRAINT account_keyholders_name_not_blank CHECK (btrim(name) <> ''),
    -- Digits with an optional leading + and separators: what an operator dials.
    CONSTRAINT account_keyholders_phone CHECK (phone ~ '^\+?[0-9][0-9 -]{2,30}$')
);

-- Open hours per Beijing weekday (ISO: 1 = Monday ... 7 = Sunday), minutes
-- after Beijing midnight: the premises are open (disarmed) from `opens` until
-- `closes`. Minutes rather than `time`: a window may end at 24:00, which
-- Python's time cannot hold. A row with both NULL says the day is closed all
-- day; an account with a schedule has a row for every weekday (written whole,
-- by arc/accounts/sites.py), an account with no rows is not supervised.
-- Windows of one day do not overlap (checked when written: the parser
-- refuses them with the day and both windows named).
CREATE TABLE account_schedules (
    account text NOT NULL REFERENCES accounts (account) ON UPDATE CASCADE ON DELETE CASCADE,
    weekday smallint NOT NULL,
    opens smallint,
    closes smallint,
    CONSTRAINT account_schedules_weekday CHECK (weekday BETWEEN 1 AND 7),
    CONSTRAINT account_schedules_pair CHECK ((opens IS NULL) = (closes IS NULL)),
    CONSTRAINT account_schedules_window CHECK (opens >= 0 AND closes <= 1440 AND opens < closes),
    CONSTRAINT account_schedules_once UNIQUE NULLS NOT DISTINCT (account, weekday, opens)
);

-- 0002's trigger function: it sets updated_at of whatever row it is given.
CREATE TRIGGER account_sites_touch BEFORE UPDATE ON account_sites
    FOR EACH ROW EXECUTE FUNCTION arc_accounts_touch();
CREATE TRIGGER account_zones_touch BEFORE UPDATE ON account_zones
    FOR EACH ROW EXECUTE FUNCTION arc_accounts_touch();

-- Dispatchers reload zones and schedules when these change (0004's arc_rules).
-- Not arc_accounts: receivers listen there and would reload (and decrypt)
-- every account's key for a change that tells them nothing.
CREATE TRIGGER account_sites_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON account_sites
    FOR EACH STATEMENT EXECUTE FUNCTION arc_rules_notify();
CREATE TRIGGER account_zones_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON account_zones
    FOR EACH STATEMENT EXECUTE FUNCTION arc_rules_notify();
CREATE TRIGGER account_keyholders_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON account_keyholders
    FOR EACH STATEMENT EXECUTE FUNCTION arc_rules_notify();
CREATE TRIGGER account_schedules_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON account_schedules
    FOR EACH STATEMENT EXECUTE FUNCTION arc_rules_notify();

-- The dispatcher reads; changes come from administrators (the owner's role).
GRANT SELECT ON account_sites, account_zones, account_keyholders, account_schedules TO arc_app;

-- A restarted dispatcher asks when each account's last 未按时布防 (not armed
-- by schedule) opened, to not open it again for a closing it handled
-- (arc/dispatch/open_close.py); open/close incidents are few among all.
CREATE INDEX incidents_open_close ON incidents (shard, opened_at) WHERE event_class = 'open_close';
