-- 0009: what the console keeps of its own: the photos patrol guards send from a site.
--
-- A photo is evidence of what the guard found. The incident log (0004) carries
-- each photo's SHA-256 in the GUARD_REPORT change, so the log proves which
-- photo was sent; the bytes themselves live here, keyed by that hash, and are
-- append-only like the logs: the application role has INSERT and SELECT only
-- and a trigger rejects UPDATE, DELETE and TRUNCATE for every role.

CREATE TABLE guard_photos (
    sha256 text PRIMARY KEY,             -- lowercase hex of SHA-256(content)
    incident_id uuid NOT NULL,
    content_type text NOT NULL,
    content bytea NOT NULL,
    uploaded_by text NOT NULL,           -- the guard's staff id
    uploaded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT guard_photos_sha256_hex CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT guard_photos_hash_matches CHECK (sha256 = encode(sha256(content), 'hex')),
    -- The API refuses more (arc/console/guard_api.py); this is the backstop.
    CONSTRAINT guard_photos_size CHECK (octet_length(content) BETWEEN 1 AND 8388608)
);
CREATE INDEX guard_photos_incident ON guard_photos (incident_id);

CREATE TRIGGER guard_photos_append_only BEFORE UPDATE OR DELETE ON guard_photos
    FOR EACH ROW EXECUTE FUNCTION arc_reject_change('guard_photos');
CREATE TRIGGER guard_photos_no_truncate BEFORE TRUNCATE ON guard_photos
    FOR EACH STATEMENT EXECUTE FUNCTION arc_reject_change('guard_photos');

GRANT SELECT, INSERT ON guard_photos TO arc_app;
