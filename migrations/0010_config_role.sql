-- 0010: arc_config, the role of the console's configuration writes.
--
-- Supervisors change accounts, sites, staff, storm modes, classification
-- overrides and response plans from the console; administrators change users
-- and grants (REGULATION R5). The console reads as arc_app, which may not
-- write any of this on purpose: the receiver and the dispatcher use that role
-- too, and a compromised read path must not re-key a panel, qualify a guard or
-- grant itself a permission. So the writes go through a second pool logged in
-- as arc_config, which holds exactly what the domain functions the console
-- calls need (arc/console/admin_api.py), and nothing on the alarm records:
-- no privilege at all on signal_log, quarantine, incident_log, access_audit,
-- chain_digests, incidents or sessions' tokens. Every change it makes writes
-- its audit_log row in the same transaction (arc.audit.record).
--
-- No sequences: every key here is a uuid made by the caller or a natural key,
-- and audit_log's chain_seq is computed under its advisory lock
-- (pg_advisory_xact_lock is executable by PUBLIC, as pg_notify is, which the
-- tables' NOTIFY triggers call). Foreign-key checks run as the referenced
-- table's owner, so references to users and accounts need no grant here.

-- Roles are cluster-wide and several databases of one cluster run this file
-- (the tests create one per test, possibly at the same time): create it only
-- once, and treat losing the race to another database's migration as success.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'arc_config') THEN
        CREATE ROLE arc_config NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO arc_config;

-- arc.audit.record: read the chain's head (shard, chain_seq, hash; not the
-- details of earlier changes) under the advisory lock, then append one row.
-- The table's trigger refuses UPDATE and DELETE for every role anyway.
GRANT SELECT (shard, chain_seq, hash), INSERT ON audit_log TO arc_config;

-- arc.accounts.service.add_account and import_csv (the link-test change):
-- LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE needs table-level UPDATE
-- (PostgreSQL allows modes above ROW EXCLUSIVE only to UPDATE, DELETE or
-- TRUNCATE); INSERT ... ON CONFLICT DO UPDATE writes and re-reads rows. No
-- DELETE: accounts are disabled, never removed.
GRANT SELECT, INSERT, UPDATE ON accounts TO arc_config;

-- arc.guards.service.check_onboarding (called by add_account) takes LOCK TABLE
-- staff IN SHARE MODE (table-level UPDATE again) and counts qualified staff;
-- add_staff and replace_staff insert and update rows. No DELETE.
GRANT SELECT, INSERT, UPDATE ON staff TO arc_config;

-- arc.accounts.sites: set_site upserts the site (INSERT ... ON CONFLICT DO
-- UPDATE); set_zone and remove_zone delete a zone's row and insert the new one
-- (never UPDATE); set_keyholders and set_schedule replace the account's rows
-- (DELETE, then INSERT). show_site reads them all back.
GRANT SELECT, INSERT, UPDATE ON account_sites TO arc_config;
GRANT SELECT, INSERT, DELETE ON account_zones, account_keyholders, account_schedules TO arc_config;

-- arc.dispatch.storm_store: start and stop lock the table in SHARE ROW
-- EXCLUSIVE mode (table-level UPDATE), insert a storm, set its stopped_*.
-- Storms are kept after they end: no DELETE.
GRANT SELECT, INSERT, UPDATE ON storm_modes TO arc_config;

-- arc.dispatch.rules_store: set_override / set_plan lock the table (SHARE ROW
-- EXCLUSIVE), upsert; remove_override / remove_plan delete the row (the
-- default applies again; the audit row keeps what it was).
GRANT SELECT, INSERT, UPDATE, DELETE ON classification_overrides, response_plans TO arc_config;

-- arc.auth.service: add_user inserts a user (not its TOTP columns, which take
-- their defaults) and reads it back; set_password, disable_user and
-- enable_user lock the row (SELECT ... FOR UPDATE reads the sealed TOTP
-- secret too) and update only the password, the disabled flag and the times.
-- Never password_hash for reading (no offline cracking from a compromised
-- console), never role (no promotion of an existing user), never last_login_at
-- or the TOTP columns.
GRANT SELECT (user_id, username, display_name, role, staff_id, totp_secret, totp_enabled,
              disabled)
    ON users TO arc_config;
GRANT INSERT (user_id, username, display_name, role, password_hash, staff_id,
              password_changed_at, created_at, updated_at)
    ON users TO arc_config;
GRANT UPDATE (password_hash, password_changed_at, disabled, updated_at) ON users TO arc_config;

-- arc.auth.sessions.end_user_sessions (a new password, a disabled user): end
-- the user's live sessions. It finds them by user and revocation only, never
-- reads a token's hash, and its trigger lets nothing else change.
GRANT SELECT (user_id, revoked_at), UPDATE (revoked_at, revoked_reason) ON sessions TO arc_config;

-- arc.auth.grants: apply inserts an application; approve, reject, issue,
-- change and revoke lock it (FOR UPDATE OF g needs UPDATE on some column) and
-- write the workflow's columns only, never who applied, for whom or when.
GRANT SELECT, INSERT ON grants TO arc_config;
GRANT UPDATE (status, scope, valid_days, decided_by, decided_at, decision_reason, issued_by,
              valid_from, valid_until, changed_by, changed_at, changes, revoked_by, revoked_at,
              revoke_reason)
    ON grants TO arc_config;
