-- Under a flood the dispatcher writes an incident's projection at most once
-- a second for joins (arc.dispatch.incident_holds); incident_log has every
-- change with its batch. So that a dispatcher taking a shard over can bring
-- the projection up to date from the log:
-- - incidents.chain_seq: the shard's chain position its state reflects: the
--   incident's log rows after it are not in `state` (NULL: written by a
--   dispatcher that wrote every change, so nothing is missing);
-- - incident_chain_heads.projected_seq: every change of the shard up to this
--   position is in the projection, so only the log after it is read (NULL:
--   all of it, up to chain_seq).
ALTER TABLE incidents ADD COLUMN chain_seq bigint;
ALTER TABLE incident_chain_heads ADD COLUMN projected_seq bigint;
