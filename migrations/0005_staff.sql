-- 0005: staff, the people the centre counts against 联网报警运营规范 §5.2 表1
-- (REGULATION R1) and sends to alarms.
--
-- One row per person. Whether a person qualifies (R2, §5.1: 18 or older,
-- public-security examination passed, trained by the employer, a valid
-- 保安员证) is computed from these dates for the day asked about
-- (arc/guards/eligibility.py), never stored: it changes with the calendar.
-- Administrators change rows through `arc staff` (arc/guards), which writes an
-- audit row for each change; the dispatcher reads them as arc_app.
--
-- Overriding a staffing refusal is not a row here: it is an audit_log row
-- (account.staffing_override), with its reason and the shortfall.

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

CREATE TABLE staff (
    staff_id uuid PRIMARY KEY,
    name text NOT NULL,
    category text NOT NULL,
    certificate_no text,                  -- 保安员证号; NULL: no certificate (yet)
    certificate_expires date,             -- the last day it is valid
    exam_passed_on date,                  -- 公安机关考试; NULL: not passed
    trained_on date,                      -- the employer's training; NULL: not trained
    date_of_birth date NOT NULL,
    beat text,                            -- patrol beat; NULL: none
    shift_start time,                     -- daily, Beijing time; end < start wraps midnight,
    shift_end time,                       -- end = start is around the clock
    latitude double precision,            -- last known position (WGS-84 degrees)
    longitude double precision,
    position_at timestamptz,              -- when it was known
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT staff_name_not_empty CHECK (btrim(name) <> ''),
    CONSTRAINT staff_category
        CHECK (category IN ('patrol_response', 'duty_operators', 'design_installation')),
    CONSTRAINT staff_certificate_has_expiry
        CHECK ((certificate_no IS NULL) = (certificate_expires IS NULL)),
    CONSTRAINT staff_shift_pair CHECK ((shift_start IS NULL) = (shift_end IS NULL)),
    CONSTRAINT staff_position_pair CHECK ((latitude IS NULL) = (longitude IS NULL)),
    CONSTRAINT staff_position_time CHECK (position_at IS NULL OR latitude IS NOT NULL),
    CONSTRAINT staff_latitude_range CHECK (latitude BETWEEN -90 AND 90),
    CONSTRAINT staff_longitude_range CHECK (longitude BETWEEN -180 AND 180)
);

-- One certificate, one person; "京ba2019" and "京BA2019" are the same number.
-- NULLs are not equal: many people may be without a certificate.
CREATE UNIQUE INDEX staff_certificate_no ON staff (upper(certificate_no));

-- 0002's trigger function: it sets updated_at of whatever row it is given.
CREATE TRIGGER staff_touch BEFORE UPDATE ON staff
    FOR EACH ROW EXECUTE FUNCTION arc_accounts_touch();

-- The dispatcher reads; changes come from administrators (the owner's role).
GRANT SELECT ON staff TO arc_app;

-- Dispatchers reload who may be sent to an alarm when staff change (0004's arc_rules).
CREATE TRIGGER staff_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON staff
    FOR EACH STATEMENT EXECUTE FUNCTION arc_rules_notify();
