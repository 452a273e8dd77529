-- 0004: the dispatcher's records: incidents, their log, site state, rules.
--
-- incident_log is the record of every change to every incident (who, when,
-- what), append-only and hash-chained like signal_log (REGULATION.md R3, R4):
-- one chain per Kafka partition of arc.signals, because one dispatcher owns
-- a partition's accounts and is the only writer of their incidents. Operators'
-- and guards' actions reach it as commands on arc.commands, keyed by account
-- like the signals, so they are applied in order by that same owner.
-- incidents is its projection for fast queries, rebuilt from it at will.

-- Day partitions for incident_log as for the other logs: the 0001 function,
-- now taking its list of parents from a table instead of a literal.
CREATE TABLE day_partitioned_logs (parent text PRIMARY KEY);
INSERT INTO day_partitioned_logs VALUES ('signal_log'), ('quarantine'), ('incident_log');

CREATE OR REPLACE FUNCTION arc_ensure_day_partition(parent regclass, day date) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    parent_name text;
    part_name text;
    existing regclass;
    lower_bound timestamptz := (day::timestamp - interval '8 hours') AT TIME ZONE 'UTC';
    upper_bound timestamptz := ((day + 1)::timestamp - interval '8 hours') AT TIME ZONE 'UTC';
BEGIN
    IF parent IS NULL OR day IS NULL THEN
        RAISE EXCEPTION 'arc_ensure_day_partition: parent and day are required';
    END IF;
    SELECT c.relname INTO parent_name
    FROM pg_class c
    WHERE c.oid = parent AND c.relkind = 'p' AND c.relnamespace = 'public'::regnamespace;
    IF parent_name IS NULL
       OR NOT EXISTS (SELECT FROM public.day_partitioned_logs l WHERE l.parent = parent_name) THEN
        RAISE EXCEPTION 'arc_ensure_day_partition: % is not a day-partitioned log', parent
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    part_name := parent_name || '_' || to_char(day, 'YYYYMMDD');
    -- See 0001 for why: no lock when the day exists, a relation lock to serialise creators.
    existing := to_regclass(format('public.%I', part_name));
    IF existing IS NULL THEN
        EXECUTE format('LOCK TABLE public.%I IN SHARE UPDATE EXCLUSIVE MODE', parent_name);
        existing := to_regclass(format('public.%I', part_name));
    END IF;
    IF existing IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM pg_inherits WHERE inhrelid = existing AND inhparent = parent) THEN
            RAISE EXCEPTION 'arc_ensure_day_partition: table % exists but is not a partition of %',
                part_name, parent_name;
        END IF;
        RETURN;
    END IF;
    EXECUTE format('CREATE TABLE public.%I (LIKE public.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   part_name, parent_name);
    EXECUTE format('ALTER TABLE public.%I ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                   parent_name, part_name,
                   to_char(lower_bound AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00',
                   to_char(upper_bound AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00');
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON public.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION arc_reject_change(%L)',
                   part_name || '_no_truncate', part_name, parent_name);
END
$$;

CREATE TABLE incident_log (
    shard integer NOT NULL,             -- Kafka partition of the account: one chain per shard
    chain_seq bigint NOT NULL,
    entry_id uuid NOT NULL,
    incident_id uuid NOT NULL,
    at timestamptz NOT NULL,
    account text NOT NULL,
    kind text NOT NULL,                 -- arc.dispatch.lifecycle.Kind
    actor text NOT NULL,                -- "arc", an operator's login, a guard's staff id
    role text NOT NULL,                 -- system, operator, supervisor, guard
    signal_id uuid,                     -- the signal that caused it, if one did
    command_id uuid,                    -- the command that asked for it, if one did
    details jsonb NOT NULL,             -- what changed; photos by their SHA-256 only
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    CONSTRAINT incident_log_chain_seq_positive CHECK (chain_seq >= 1),
    CONSTRAINT incident_log_hash_length CHECK (octet_length(prev_hash) = 32 AND octet_length(hash) = 32),
    PRIMARY KEY (shard, chain_seq, at),
    UNIQUE (entry_id, at)
) PARTITION BY RANGE (at);

CREATE INDEX incident_log_incident ON incident_log (incident_id, shard, chain_seq);
CREATE TRIGGER incident_log_append_only BEFORE UPDATE OR DELETE ON incident_log
    FOR EACH ROW EXECUTE FUNCTION arc_reject_change('incident_log');
CREATE TRIGGER incident_log_no_truncate BEFORE TRUNCATE ON incident_log
    FOR EACH STATEMENT EXECUTE FUNCTION arc_reject_change('incident_log');

-- The projection: one row per incident, its whole state in `state` (steps,
-- zones...), the columns the queue and reports filter on beside it.
CREATE TABLE incidents (
    incident_id uuid PRIMARY KEY,
    shard integer NOT NULL,
    account text NOT NULL,
    event_class text NOT NULL,
    grade smallint NOT NULL CHECK (grade BETWEEN 1 AND 4),
    status text NOT NULL,
    title text NOT NULL,
    opened_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    closed_at timestamptz,
    owner text,
    guard text,
    signal_count integer NOT NULL,
    restored boolean NOT NULL,
    confirmed boolean NOT NULL,
    escalation_level integer NOT NULL,
    resolution text,
    cause text,
    state jsonb NOT NULL
);
-- The live queue: open incidents by grade, then age.
CREATE INDEX incidents_queue ON incidents (grade, opened_at) WHERE status <> 'closed';
CREATE INDEX incidents_account ON incidents (account, opened_at);
CREATE INDEX incidents_open_by_shard ON incidents (shard) WHERE status <> 'closed';

-- Each account's last known state (arc.dispatch.site_state), kept with the
-- incidents so that it survives restarts: never "unknown" after one.
CREATE TABLE site_state (
    account text PRIMARY KEY,
    shard integer NOT NULL,
    last_signal_at timestamptz,
    state jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The dispatcher's Kafka offsets (arc.signals, arc.commands) per partition and
-- its chain heads per shard, changed in the same transaction as the rows.
CREATE TABLE dispatcher_state (
    topic text,
    shard integer,
    next_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, shard)
);
CREATE TABLE incident_chain_heads (
    shard integer PRIMARY KEY,
    chain_seq bigint NOT NULL,
    chain_hash bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The centre's rules, changed by supervisors (audit_log records each change):
-- classification overrides ('' = every account / every zone) and response plans.
CREATE TABLE classification_overrides (
    account text NOT NULL DEFAULT '',
    zone text NOT NULL DEFAULT '',
    match text NOT NULL,                -- SIA:BA, CID:130, class:burglary
    event_class text,                   -- NULL: keep the class, change the grade
    grade smallint NOT NULL CHECK (grade BETWEEN 1 AND 4),
    reason text NOT NULL CHECK (reason <> ''),
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, zone, match),
    CONSTRAINT classification_overrides_match CHECK (match ~ '^(SIA:[A-Z]{2}|CID:[0-9]{3}|class:[a-z_]+)$'),
    CONSTRAINT classification_overrides_zone_needs_account CHECK (zone = '' OR account <> '')
);
CREATE TABLE response_plans (
    account text NOT NULL DEFAULT '',
    event_class text NOT NULL,
    grade smallint NOT NULL DEFAULT 0 CHECK (grade BETWEEN 0 AND 4),  -- 0: every grade
    steps jsonb NOT NULL,               -- [{"kind", "deadline_s", "required"}, ...]
    reason text NOT NULL CHECK (reason <> ''),
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, event_class, grade)
);

-- Dispatchers LISTEN arc_rules and reload both tables.
CREATE FUNCTION arc_rules_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('arc_rules', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER classification_overrides_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON classification_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION arc_rules_notify();
CREATE TRIGGER response_plans_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON response_plans
    FOR EACH STATEMENT EXECUTE FUNCTION arc_rules_notify();

GRANT SELECT, INSERT ON incident_log TO arc_app;
GRANT SELECT, INSERT, UPDATE ON incidents, site_state, dispatcher_state, incident_chain_heads TO arc_app;
GRANT SELECT ON classification_overrides, response_plans TO arc_app;
