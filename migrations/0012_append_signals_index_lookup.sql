-- The log writer's batch function again (0003), with its duplicate check by
-- dedup key written so that it always uses the index. Measured under load
-- (50 panels, a new day's partition): PostgreSQL spent most of the log
-- writer's time in a sequential scan of signal_log for every batch.

CREATE OR REPLACE FUNCTION arc_append_signals(
    state_topic text[], state_shard integer[], state_next_offset bigint[],
    state_chain_seq bigint[], state_chain_hash bytea[],
    notices text[],
    replay_since timestamptz,
    r_shard integer[], r_chain_seq bigint[], r_signal_id uuid[], r_received_at timestamptz[],
    r_account text[], r_protocol text[], r_transport text[], r_peer text[],
    r_message_id text[], r_sequence text[], r_receiver_no text[], r_line_no text[],
    r_encrypted boolean[], r_qualifier text[], r_code text[], r_cid_event text[],
    r_event_class text[], r_zone text[], r_user_no text[], r_partition_no text[],
    r_event_text text[], r_device_time timestamptz[], r_drift_seconds double precision[],
    r_drift_flagged boolean[], r_xdata jsonb[], r_raw bytea[], r_dedup_key bytea[],
    r_kafka_offset bigint[], r_prev_hash bytea[], r_hash bytea[]
) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    earliest timestamptz := (SELECT min(t) FROM unnest(r_received_at) AS t);
    latest timestamptz := (SELECT max(t) FROM unnest(r_received_at) AS t);
BEGIN
    -- The same lookups as the writer's general path: by id in the batch's
    -- time range, and per dedup key (an index lookup each, whatever the
    -- planner's statistics of a new day's partition).
    IF EXISTS (
        SELECT 1 FROM signal_log
        WHERE signal_id = ANY (r_signal_id) AND received_at BETWEEN earliest AND latest
    ) OR EXISTS (
        -- LIMIT 1 keeps the lookup a parameterised index scan per key: as
        -- an EXISTS it became a semi-join, planned without statistics as a
        -- hash join over a sequential scan of the recent partitions.
        SELECT 1 FROM unnest(r_dedup_key) AS k(key) CROSS JOIN LATERAL (
            SELECT 1 FROM signal_log
            WHERE dedup_key = k.key AND received_at >= replay_since
            LIMIT 1
        ) AS stored
    ) THEN
        RETURN false;
    END IF;
    INSERT INTO signal_log (
        shard, chain_seq, signal_id, received_at, account, protocol, transport, peer,
        message_id, sequence, receiver_no, line_no, encrypted, qualifier, code, cid_event,
        event_class, zone, user_no, partition_no, event_text, device_time, drift_seconds,
        drift_flagged, xdata, raw, dedup_key, kafka_offset, prev_hash, hash
    )
    SELECT * FROM unnest(
        r_shard, r_chain_seq, r_signal_id, r_received_at, r_account, r_protocol, r_transport,
        r_peer, r_message_id, r_sequence, r_receiver_no, r_line_no, r_encrypted, r_qualifier,
        r_code, r_cid_event, r_event_class, r_zone, r_user_no, r_partition_no, r_event_text,
        r_device_time, r_drift_seconds, r_drift_flagged, r_xdata, r_raw, r_dedup_key,
        r_kafka_offset, r_prev_hash, r_hash
    );
    INSERT INTO logwriter_state AS s (topic, shard, next_offset, chain_seq, chain_hash)
    SELECT * FROM unnest(
        state_topic, state_shard, state_next_offset, state_chain_seq, state_chain_hash
    )
    ON CONFLICT (topic, shard) DO UPDATE SET
        next_offset = excluded.next_offset,
        chain_seq = excluded.chain_seq,
        chain_hash = excluded.chain_hash,
        updated_at = now();
    -- Delivered at commit, the end of this statement's transaction.
    PERFORM pg_notify('arc_durable', notice) FROM unnest(notices) AS notice;
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION arc_append_signals FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arc_append_signals TO arc_app;
