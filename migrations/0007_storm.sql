-- 0007: storm mode (arc.dispatch.storm) and the 12-month false-alarm count.
--
-- A supervisor switches a class of signals to storm handling for a time when
-- it floods in (a power cut across a district). Each period is one row, kept
-- after it ends: the regulator may ask why alarms of a class were logged,
-- grouped or held on a given day, and audit_log (written in the same
-- transaction by arc.dispatch.storm_store) says who started and stopped it.
-- Rows are never deleted; stopping early sets stopped_*.
CREATE TABLE storm_modes (
    storm_id uuid PRIMARY KEY,
    event_class text NOT NULL,          -- arc.dispatch.classification.CLASSES
    mode text NOT NULL,                 -- log, group, delay
    delay_seconds integer,              -- mode delay: how long a new incident is held
    started_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,       -- it ends by itself: nobody has to remember it
    reason text NOT NULL,
    started_by text NOT NULL,
    stopped_at timestamptz,
    stopped_by text,
    stop_reason text,
    CONSTRAINT storm_modes_mode CHECK (mode IN ('log', 'group', 'delay')),
    CONSTRAINT storm_modes_class CHECK (event_class ~ '^[a-z_]+$'),
    -- A held alarm is one nobody sees: ten minutes at most (arc.dispatch.storm.MAX_DELAY).
    CONSTRAINT storm_modes_delay CHECK (
        (mode = 'delay') = (delay_seconds IS NOT NULL) AND coalesce(delay_seconds, 1) BETWEEN 1 AND 600),
    -- At most 24 hours (arc.dispatch.storm.MAX_DURATION): a forgotten storm must end.
    CONSTRAINT storm_modes_duration CHECK (
        ends_at > started_at AND ends_at <= started_at + interval '24 hours'),
    CONSTRAINT storm_modes_reason CHECK (btrim(reason) <> ''),
    CONSTRAINT storm_modes_stop CHECK (
        (stopped_at IS NULL) = (stopped_by IS NULL) AND (stopped_at IS NULL) = (stop_reason IS NULL)
        AND (stopped_at IS NULL OR stopped_at >= started_at) AND btrim(coalesce(stop_reason, 'x')) <> '')
);
-- The dispatcher loads the storms not yet over; `arc storm list` shows the latest.
CREATE INDEX storm_modes_by_class ON storm_modes (event_class, ends_at);
CREATE INDEX storm_modes_recent ON storm_modes (started_at);

-- Dispatchers LISTEN arc_rules (0004) and reload their storms on a change.
CREATE TRIGGER storm_modes_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON storm_modes
    FOR EACH STATEMENT EXECUTE FUNCTION arc_rules_notify();

-- A dispatcher taking over a shard counts each account's false alarms of the
-- last 365 days (arc.dispatch.false_alarms): those closes only, by shard.
CREATE INDEX incidents_false_alarms ON incidents (shard, closed_at) WHERE resolution = 'false_alarm';

-- The services read the storms; only the owner (arc storm, the console's
-- supervisor actions through arc.dispatch.storm_store) writes them.
GRANT SELECT ON storm_modes TO arc_app;
