-- 0008: access control of the console (REGULATION R5): users, logins, sessions,
-- grants, and the access audit.
--
-- R5: least privilege; grants applied for, approved, issued for a period,
-- changed and revoked, each step recorded; every viewing, copying, exporting or
-- forwarding of records logged. How the tables serve that:
--   * users: one role each (arc/auth/models.py); passwords as argon2id hashes
--     only; TOTP secrets sealed under ARC_MASTER_KEY (arc/secrets.py);
--   * login_failures: what the rate limit counts (per username, per address);
--   * sessions: the SHA-256 of each cookie's token, never the token; a session
--     once ended stays ended (trigger), so a token cannot be replayed after logout;
--   * grants: the current state of each grant. Every step of the workflow is
--     also an audit_log row (arc.audit.record) in the same transaction: that
--     log is already append-only, hash-chained, walked by arc verify and signed
--     by arc digest, and "who gave whom which permission" is exactly the
--     administrative record it keeps, so a second chain would add nothing;
--   * access_audit: every read, export, copy, forward or stream of alarm
--     records, written in the reader's transaction; append-only and
--     hash-chained like the alarm log (0001), partitioned by Beijing day like
--     it, so that retention treats it the same way.
--
-- Privileges of arc_app (the console): what logging in, using a session,
-- checking grants and auditing reads need, no more. It cannot create users,
-- change passwords or roles, or write grants: a compromised console must not
-- be able to mint an administrator or approve its own export. Those changes
-- are made with the owner's role (`arc user`, `arc grant`).

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

CREATE TABLE users (
    user_id uuid PRIMARY KEY,
    -- Lower case, never renamed: grants and logs name users by it.
    username text NOT NULL UNIQUE,
    display_name text NOT NULL,
    role text NOT NULL,
    password_hash text NOT NULL,
    staff_id uuid REFERENCES staff (staff_id),  -- a guard's row in staff
    -- AES-GCM box bound to user_id (purpose arc/auth/totp/v1); NULL: no TOTP.
    -- Set but not enabled: enrolled, waiting for the first code to confirm it.
    totp_secret bytea,
    totp_enabled boolean NOT NULL DEFAULT false,
    -- The newest 30-second step whose code was accepted: a code works once.
    totp_last_step bigint NOT NULL DEFAULT 0,
    disabled boolean NOT NULL DEFAULT false,
    last_login_at timestamptz,
    password_changed_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT users_username_format CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    CONSTRAINT users_display_name_not_empty CHECK (btrim(display_name) <> ''),
    CONSTRAINT users_role
        CHECK (role IN ('operator', 'supervisor', 'admin', 'auditor', 'guard', 'api_client')),
    -- Nothing but an argon2id hash: a plain or weakly hashed password is refused by the schema.
    CONSTRAINT users_password_argon2id CHECK (password_hash LIKE '$argon2id$%'),
    CONSTRAINT users_totp_needs_secret CHECK (NOT totp_enabled OR totp_secret IS NOT NULL)
);
CREATE INDEX users_staff ON users (staff_id) WHERE staff_id IS NOT NULL;

-- Failed logins, known usernames or not (a lock must not tell which exist).
-- Rows only matter for the rate-limit window; old ones may be pruned by the owner.
CREATE TABLE login_failures (
    at timestamptz NOT NULL,
    username text NOT NULL,             -- as tried, lower-cased, at most 64 characters
    peer text NOT NULL,                 -- the client address
    reason text NOT NULL,
    CONSTRAINT login_failures_username_length CHECK (length(username) <= 64),
    CONSTRAINT login_failures_peer_length CHECK (length(peer) <= 128),
    -- locked: tried while locked out (recorded, but not counted, so that an
    -- attacker cannot keep a user locked out forever by trying on).
    CONSTRAINT login_failures_reason CHECK (reason IN ('password', 'totp', 'locked'))
);
CREATE INDEX login_failures_username ON login_failures (username, at);
CREATE INDEX login_failures_peer ON login_failures (peer, at);

CREATE TABLE sessions (
    session_id uuid PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,   -- SHA-256 of the cookie's token
    user_id uuid NOT NULL REFERENCES users (user_id),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,    -- the absolute end, however busy the session
    idle_seconds integer NOT NULL,      -- it also ends after this long unused
    last_seen_at timestamptz NOT NULL,
    revoked_at timestamptz,             -- logout, password change, user disabled
    revoked_reason text,
    peer text,
    CONSTRAINT sessions_token_hash_length CHECK (octet_length(token_hash) = 32),
    CONSTRAINT sessions_lifetime CHECK (expires_at > created_at),
    CONSTRAINT sessions_idle_positive CHECK (idle_seconds > 0),
    CONSTRAINT sessions_revoked_pair CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

-- An ended session stays ended, and what identifies a session never changes:
-- only last_seen_at moves (forward) and revoked_* are set, once. For every
-- role, so that no bug or compromised console revives a logged-out token.
CREATE FUNCTION arc_sessions_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'session % has ended (REGULATION R5): it cannot be changed', OLD.session_id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF (NEW.session_id, NEW.token_hash, NEW.user_id, NEW.created_at, NEW.expires_at,
        NEW.idle_seconds, NEW.peer)
       IS DISTINCT FROM
       (OLD.session_id, OLD.token_hash, OLD.user_id, OLD.created_at, OLD.expires_at,
        OLD.idle_seconds, OLD.peer) THEN
        RAISE EXCEPTION 'session %: only last_seen_at and revocation may change', OLD.session_id
            USING ERRCODE = 'restrict_violation';
    END IF;
    NEW.last_seen_at := greatest(OLD.last_seen_at, NEW.last_seen_at);
    RETURN NEW;
END
$$;
CREATE TRIGGER sessions_guard BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION arc_sessions_guard();

-- Grants (arc/auth/grants.py): applied -> approved -> issued (-> changed) ->
-- revoked, or rejected; expired is not a state but a time: a grant counts only
-- while valid_from <= now < valid_until, so nothing has to run for it to end.
-- People are named by username (unique, never renamed).
CREATE TABLE grants (
    grant_id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (user_id),
    permission text NOT NULL,
    scope text NOT NULL,                -- '*' or e.g. 'account:1234'
    status text NOT NULL,
    reason text NOT NULL,               -- why it is needed, from the application
    valid_days integer NOT NULL,        -- asked for; the issued period is this long
    applied_by text NOT NULL REFERENCES users (username),
    applied_at timestamptz NOT NULL,
    decided_by text REFERENCES users (username),   -- approved or rejected it
    decided_at timestamptz,
    decision_reason text,
    issued_by text REFERENCES users (username),
    valid_from timestamptz,
    valid_until timestamptz,
    changed_by text REFERENCES users (username),
    changed_at timestamptz,
    changes integer NOT NULL DEFAULT 0,
    revoked_by text REFERENCES users (username),
    revoked_at timestamptz,
    revoke_reason text,
    CONSTRAINT grants_status
        CHECK (status IN ('applied', 'approved', 'issued', 'rejected', 'revoked')),
    -- Never users.manage or grants.approve: one approval must not multiply itself.
    CONSTRAINT grants_permission CHECK (permission IN (
        'queue.read', 'incident.work', 'step.waive', 'account.read', 'account.manage',
        'staff.read', 'rules.manage', 'audit.read', 'records.export', 'staffing.read')),
    CONSTRAINT grants_scope_not_empty CHECK (btrim(scope) <> ''),
    CONSTRAINT grants_reason_not_empty CHECK (btrim(reason) <> ''),
    CONSTRAINT grants_valid_days CHECK (valid_days BETWEEN 1 AND 90),
    -- Nobody approves what they applied for (R5: graded authorisation).
    CONSTRAINT grants_not_self_decided CHECK (decided_by <> applied_by),
    CONSTRAINT grants_issued_has_period CHECK (
        status NOT IN ('issued') OR (valid_from IS NOT NULL AND valid_until > valid_from)),
    CONSTRAINT grants_revoked_has_reason CHECK (
        (status = 'revoked') = (revoked_at IS NOT NULL AND revoke_reason IS NOT NULL))
);
CREATE INDEX grants_user ON grants (user_id, status);

-- The access audit. One chain (shard 0) today: reads are serialised on an
-- advisory lock as audit_log's writes are, which suits the console's rate;
-- the shard column leaves room for one chain per console process later.
INSERT INTO day_partitioned_logs VALUES ('access_audit');

CREATE TABLE access_audit (
    shard integer NOT NULL DEFAULT 0,
    chain_seq bigint NOT NULL,
    access_id uuid NOT NULL,
    at timestamptz NOT NULL,
    actor text NOT NULL,                -- username, or cli:LOGIN for the command line
    role text NOT NULL,
    action text NOT NULL,
    subject text NOT NULL,              -- what was read: incident:<id>, account:<no>, queue ...
    details jsonb NOT NULL,             -- filters, row counts; never secrets (arc/auth/access.py)
    peer text,                          -- the client address, if over the network
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    CONSTRAINT access_audit_chain_seq_positive CHECK (chain_seq >= 1),
    CONSTRAINT access_audit_hash_length CHECK (octet_length(prev_hash) = 32 AND octet_length(hash) = 32),
    CONSTRAINT access_audit_action CHECK (action IN ('read', 'export', 'copy', 'forward', 'stream')),
    PRIMARY KEY (shard, chain_seq, at),
    UNIQUE (access_id, at)
) PARTITION BY RANGE (at);
CREATE INDEX access_audit_actor ON access_audit (actor, at);
CREATE INDEX access_audit_at ON access_audit (at);

CREATE TRIGGER access_audit_append_only BEFORE UPDATE OR DELETE ON access_audit
    FOR EACH ROW EXECUTE FUNCTION arc_reject_change('access_audit');
CREATE TRIGGER access_audit_no_truncate BEFORE TRUNCATE ON access_audit
    FOR EACH STATEMENT EXECUTE FUNCTION arc_reject_change('access_audit');

-- The head of each access_audit chain, moved in the same transaction as the
-- row: the writer finds it without scanning every day's partition, and arc
-- verify notices rows removed from the end (as incident_chain_heads does).
CREATE TABLE access_audit_heads (
    shard integer PRIMARY KEY,
    chain_seq bigint NOT NULL,
    chain_hash bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT access_audit_heads_seq CHECK (chain_seq >= 0),
    CONSTRAINT access_audit_heads_hash_length CHECK (octet_length(chain_hash) = 32)
);
-- Shard 0 exists from the start (chain_seq 0, the genesis hash), so arc_app needs no INSERT.
INSERT INTO access_audit_heads (shard, chain_seq, chain_hash) VALUES (0, 0, decode(repeat('00', 32), 'hex'));

GRANT SELECT ON users TO arc_app;
GRANT UPDATE (last_login_at, totp_last_step) ON users TO arc_app;
GRANT SELECT, INSERT ON login_failures TO arc_app;
GRANT SELECT, INSERT ON sessions TO arc_app;
GRANT UPDATE (last_seen_at, revoked_at, revoked_reason) ON sessions TO arc_app;
GRANT SELECT ON grants TO arc_app;
GRANT SELECT, INSERT ON access_audit TO arc_app;
GRANT SELECT, UPDATE (chain_seq, chain_hash, updated_at) ON access_audit_heads TO arc_app;
