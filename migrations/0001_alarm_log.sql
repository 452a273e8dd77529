-- 0001: the alarm log, stored so that it cannot be changed (REGULATION.md R3).
--
-- 保安服务管理条例 第二十五条: alarm records are kept at least 30 days for
-- inspection and neither the operator nor the client may delete or alter them.
-- The database enforces it, not the application:
--   * the application role arc_app may only SELECT and INSERT the logs;
--   * a trigger refuses UPDATE, DELETE and TRUNCATE for every role, owner and
--     superuser included (a superuser can still disable it: the hash chains,
--     see arc/chain.py, and the signed daily digests make that detectable);
--   * expiry drops whole day partitions (arc retention, not built yet), never rows.
-- Each log is a hash chain per writer shard: hash = SHA-256(prev_hash || canonical
-- row); shard and chain_seq are hashed too, so rows can be neither removed nor moved.

-- Roles are cluster-wide and several databases of one cluster run this file
-- (the tests create one per test, possibly at the same time): create it only
-- once, and treat losing the race to another database's migration as success.
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

-- Since PostgreSQL 15 only the database owner may CREATE in public; say so
-- anyway, for databases made from an older template: arc_app owns nothing.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO arc_app;

-- The refusal. TG_ARGV[0] is the log's name, so that a partition's refusal
-- names the log it belongs to. SQLSTATE 23001 (restrict_violation): a rule of
-- the data, which callers can tell from a missing privilege (42501).
CREATE FUNCTION arc_reject_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    log_name text := coalesce(TG_ARGV[0], TG_TABLE_NAME);
BEGIN
    RAISE EXCEPTION '% is append-only (保安服务管理条例 第二十五条): % refused', log_name, TG_OP
        USING ERRCODE = 'restrict_violation',
              DETAIL = format('table %I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME),
              HINT = 'records expire only by whole day partitions (arc retention)';
END
$$;

-- signal_log: every signal the centre received and decoded, one row each.
-- Partitioned by Beijing day (see arc_ensure_day_partition) so that expiry can
-- drop whole days. There is no DEFAULT partition: a row for a day that has no
-- partition fails loudly instead of landing where retention would miss it.
CREATE TABLE signal_log (
    shard integer NOT NULL,             -- Kafka partition of arc.signals: one chain per shard
    chain_seq bigint NOT NULL,          -- 1, 2, 3 ... within the shard
    signal_id uuid NOT NULL,
    received_at timestamptz NOT NULL,
    account text NOT NULL,
    protocol text NOT NULL,
    transport text NOT NULL,            -- tcp, udp, http
    peer text,
    message_id text,                    -- DC-09 ID token
    sequence text,
    receiver_no text,
    line_no text,
    encrypted boolean NOT NULL,
    qualifier text NOT NULL,
    code text,
    cid_event text,
    event_class text,
    zone text,
    user_no text,
    partition_no text,
    event_text text,
    device_time timestamptz,
    drift_seconds double precision,
    drift_flagged boolean NOT NULL,
    xdata jsonb NOT NULL,               -- JSON array of [name, value] string pairs
    raw bytea NOT NULL,
    dedup_key bytea,                    -- SHA-256 naming a panel's retransmission; NULL if none
    kafka_offset bigint NOT NULL,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    CONSTRAINT signal_log_chain_seq_positive CHECK (chain_seq >= 1),
    CONSTRAINT signal_log_hash_length CHECK (octet_length(prev_hash) = 32 AND octet_length(hash) = 32),
    -- A partitioned table's keys must contain the partition key.
    PRIMARY KEY (shard, chain_seq, received_at),
    UNIQUE (signal_id, received_at)
) PARTITION BY RANGE (received_at);

CREATE INDEX signal_log_dedup_key ON signal_log (dedup_key) WHERE dedup_key IS NOT NULL;
CREATE INDEX signal_log_account ON signal_log (account, received_at);

-- quarantine: what arrived but could not be accepted (NAK'd, DUH'd, refused),
-- kept as received for the same 30 days: it is part of the record too.
CREATE TABLE quarantine (
    shard integer NOT NULL,             -- Kafka partition of arc.quarantine
    chain_seq bigint NOT NULL,
    quarantine_id uuid NOT NULL,
    received_at timestamptz NOT NULL,
    transport text NOT NULL,
    peer text,
    protocol text,
    account text,
    response text,                      -- NAK, DUH, or an HTTP status
    reason text NOT NULL,
    raw bytea NOT NULL,
    kafka_offset bigint NOT NULL,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    CONSTRAINT quarantine_chain_seq_positive CHECK (chain_seq >= 1),
    CONSTRAINT quarantine_hash_length CHECK (octet_length(prev_hash) = 32 AND octet_length(hash) = 32),
    PRIMARY KEY (shard, chain_seq, received_at),
    UNIQUE (quarantine_id, received_at)
) PARTITION BY RANGE (received_at);

-- audit_log: administrative actions (who changed what). Low volume, so one
-- table; written through arc.audit.record, one chain per shard (0 today).
CREATE TABLE audit_log (
    shard integer NOT NULL DEFAULT 0,
    chain_seq bigint NOT NULL,
    audit_id uuid NOT NULL UNIQUE,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    subject text NOT NULL,
    details jsonb NOT NULL,             -- never secrets: see arc/audit.py
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    CONSTRAINT audit_log_chain_seq_positive CHECK (chain_seq >= 1),
    CONSTRAINT audit_log_hash_length CHECK (octet_length(prev_hash) = 32 AND octet_length(hash) = 32),
    PRIMARY KEY (shard, chain_seq)
);

-- chain_digests: each chain's head at the end of a Beijing day, signed with the
-- centre's Ed25519 key (arc digest). Handed to a regulator, it proves later
-- that nothing up to that head changed. Append-only as well: a signature, once
-- given, stands.
CREATE TABLE chain_digests (
    day date NOT NULL,
    table_name text NOT NULL,
    shard integer NOT NULL,
    chain_seq bigint NOT NULL,
    head_hash bytea NOT NULL,
    signed_at timestamptz NOT NULL,
    public_key bytea NOT NULL,
    signature bytea NOT NULL,
    PRIMARY KEY (day, table_name, shard)
);

-- Append-only for every role. Row triggers on a partitioned table are cloned
-- to each partition, present and future; statement (TRUNCATE) triggers are
-- not, so arc_ensure_day_partition adds one to each partition it creates.
CREATE TRIGGER signal_log_append_only BEFORE UPDATE OR DELETE ON signal_log
    FOR EACH ROW EXECUTE FUNCTION arc_reject_change('signal_log');
CREATE TRIGGER signal_log_no_truncate BEFORE TRUNCATE ON signal_log
    FOR EACH STATEMENT EXECUTE FUNCTION arc_reject_change('signal_log');
CREATE TRIGGER quarantine_append_only BEFORE UPDATE OR DELETE ON quarantine
    FOR EACH ROW EXECUTE FUNCTION arc_reject_change('quarantine');
CREATE TRIGGER quarantine_no_truncate BEFORE TRUNCATE ON quarantine
    FOR EACH STATEMENT EXECUTE FUNCTION arc_reject_change('quarantine');
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION arc_reject_change('audit_log');
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION arc_reject_change('audit_log');
CREATE TRIGGER chain_digests_append_only BEFORE UPDATE OR DELETE ON chain_digests
    FOR EACH ROW EXECUTE FUNCTION arc_reject_change('chain_digests');
CREATE TRIGGER chain_digests_no_truncate BEFORE TRUNCATE ON chain_digests
    FOR EACH STATEMENT EXECUTE FUNCTION arc_reject_change('chain_digests');

-- Create the partition of `parent` (signal_log or quarantine) for one Beijing
-- day: signal_log_20261202 holds [2026-12-02 00:00+08, 2026-12-03 00:00+08).
-- Beijing is UTC+8 without daylight saving; a fixed offset, not the tz
-- database's Asia/Shanghai (which had DST in 1986-1991), so bounds never move.
--
-- SECURITY DEFINER so that arc_app, which owns nothing, can have tomorrow's
-- partition made; only these two parents are accepted, and the search_path is
-- fixed so that nothing arc_app could create is resolved in the owner's name.
-- Idempotent and safe under concurrent callers: a lock on the parent
-- serialises creators, and an existing partition is returned at once.
-- The table is created alone and then ATTACHed: ATTACH PARTITION takes SHARE
-- UPDATE EXCLUSIVE on the parent where CREATE TABLE ... PARTITION OF takes
-- ACCESS EXCLUSIVE, which would queue the writer behind a long `arc verify`.
CREATE FUNCTION arc_ensure_day_partition(parent regclass, day date) RETURNS void
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
    lower_text text;
    upper_text text;
BEGIN
    IF parent IS NULL OR day IS NULL THEN
        RAISE EXCEPTION 'arc_ensure_day_partition: parent and day are required';
    END IF;
    SELECT c.relname INTO parent_name
    FROM pg_class c
    WHERE c.oid = parent AND c.relkind = 'p' AND c.relnamespace = 'public'::regnamespace;
    IF parent_name IS NULL OR parent_name NOT IN ('signal_log', 'quarantine') THEN
        RAISE EXCEPTION 'arc_ensure_day_partition: % is not a day-partitioned log', parent
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    part_name := parent_name || '_' || to_char(day, 'YYYYMMDD');

    -- The common case, the day exists: no lock at all.
    existing := to_regclass(format('public.%I', part_name));
    IF existing IS NULL THEN
        -- Serialise creators on the parent itself. Not an advisory lock: taking
        -- a relation lock also makes this backend read the catalog changes
        -- committed meanwhile, so the second look below sees a partition that a
        -- concurrent caller just made (after an advisory lock it may not, and
        -- CREATE TABLE fails with "already exists"). SHARE UPDATE EXCLUSIVE
        -- conflicts with itself, not with readers and writers of the log.
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

    -- Render the bounds in UTC ourselves: the caller's DateStyle and TimeZone
    -- must not change what the partition covers.
    lower_text := to_char(lower_bound AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00';
    upper_text := to_char(upper_bound AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00';
    EXECUTE format('CREATE TABLE public.%I (LIKE public.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   part_name, parent_name);
    EXECUTE format('ALTER TABLE public.%I ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                   parent_name, part_name, lower_text, upper_text);
    -- Row triggers came with ATTACH; TRUNCATE of the partition itself needs its own.
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON public.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION arc_reject_change(%L)',
                   part_name || '_no_truncate', part_name, parent_name);
END
$$;

-- Functions are executable by PUBLIC by default; this one only by arc_app (and the owner).
REVOKE ALL ON FUNCTION arc_ensure_day_partition(regclass, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arc_ensure_day_partition(regclass, date) TO arc_app;

-- logwriter_state: the log writer's Kafka offset and chain head per (topic,
-- shard), updated in the same transaction as the rows it writes, so a restart
-- resumes exactly where the committed log ends (no gap, no duplicate).
CREATE TABLE logwriter_state (
    topic text,
    shard integer,
    next_offset bigint NOT NULL,
    chain_seq bigint NOT NULL,
    chain_hash bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, shard)
);

-- The application reads and appends; it never changes or removes a record.
GRANT SELECT, INSERT ON signal_log, quarantine, audit_log, chain_digests TO arc_app;
GRANT SELECT, INSERT, UPDATE ON logwriter_state TO arc_app;
