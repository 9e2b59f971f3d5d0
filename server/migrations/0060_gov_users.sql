-- Government (issue 14, items 1 and 2): the programme's government users and the append-only
-- log of every administrative action. SQL in reporting/users_repository.py and
-- reporting/audit_repository.py (docs/government.md).

-- Government users: analysts read reports, administrators administer the programme (JWT roles
-- gov_analyst and gov_admin; the token's subject is the id). Sign-in is a password (kept only
-- as its scrypt hash, kit/passwords.py: `scrypt$<log2 n>$<r>$<p>$<salt>$<key>`) and a TOTP
-- code (RFC 6238). The TOTP secret must be usable to check codes, so it is stored sealed
-- (kit/cipher.py, AES-256-GCM bound to `gov_users:<id>`), never in clear. totp_last_step is
-- the time step of the last code accepted: a code is accepted once, and never one of an
-- earlier step (no replay inside the drift window). A user is never deleted (the audit log
-- names it): disabling sets disabled_at and the guard refuses its tokens on the next request.
CREATE TABLE gov_users (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    login          text        NOT NULL UNIQUE CHECK (login ~ '^[a-z0-9][a-z0-9._@-]{2,63}$'),
    display_name   text        NOT NULL
                   CHECK (btrim(display_name) <> '' AND length(display_name) <= 100),
    role           text        NOT NULL CHECK (role IN ('gov_analyst', 'gov_admin')),
    password_hash  text        NOT NULL CHECK (password_hash LIKE 'scrypt$%'),
    totp_secret    text        NOT NULL CHECK (totp_secret LIKE 'v1:%'),
    totp_last_step bigint      NOT NULL DEFAULT 0 CHECK (totp_last_step >= 0),
    created_by     uuid        REFERENCES gov_users (id), -- NULL: the programme's CLI
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);

-- The audit log: who (a gov user's id, or `cli:<os user>` for a command), what (an action
-- name such as `operator.register`), on what (the target's id), when, and the target's state
-- before and after (JSON; NULL when there was none). Append-only: the application role may
-- insert and read it, never update or delete it (app_grants below), and a trigger refuses
-- UPDATE and DELETE to every role, the owner included (TRUNCATE, for tests and resets, is the
-- owner's alone: the application role has no TRUNCATE on any table).
CREATE TABLE gov_audit_log (
    id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor  text        NOT NULL CHECK (actor ~ '^(cli:.{1,64}|[0-9a-f-]{36})$'),
    action text        NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.-]{1,63}$'),
    target text        NOT NULL CHECK (length(target) BETWEEN 1 AND 200),
    before jsonb,
    after  jsonb
);
CREATE INDEX gov_audit_log_by_at ON gov_audit_log (at, id);
CREATE INDEX gov_audit_log_by_target ON gov_audit_log (target, id);

CREATE FUNCTION gov_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE restrict_violation USING
        MESSAGE = 'the government audit log is append-only: its rows never change',
        TABLE = 'gov_audit_log';
END
$$;
CREATE TRIGGER gov_audit_log_append_only BEFORE UPDATE OR DELETE ON gov_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION gov_audit_log_append_only();

INSERT INTO app_grants (table_name, privileges) VALUES
    ('gov_users',
     'SELECT, INSERT, UPDATE (display_name, role, password_hash, totp_secret, totp_last_step, '
     'disabled_at)'),
    ('gov_audit_log', 'SELECT, INSERT');
