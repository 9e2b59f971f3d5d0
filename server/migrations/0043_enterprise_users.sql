-- Enterprises (issue 12, part C): the enterprise API's users and the carbon account reports it
-- issues. SQL in enterprises/users_repository.py.

-- An enterprise's administrators (JWT role enterprise_admin, scoped to their enterprise). The
-- login is unique in the whole programme, so a sign-in needs nothing else; it is stored lower
-- case. The password is kept only as its scrypt hash (enterprises/users.py documents the
-- parameters, which the hash string carries: `scrypt$<log2 n>$<r>$<p>$<salt>$<key>`).
-- A user is never deleted (the reports it issued and the users it created name it): disabling
-- sets disabled_at, and the guard refuses its tokens from the next request on.
CREATE TABLE enterprise_users (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    enterprise_id uuid        NOT NULL REFERENCES enterprises (id),
    login         text        NOT NULL UNIQUE CHECK (login ~ '^[a-z0-9][a-z0-9._@-]{2,63}$'),
    display_name  text        NOT NULL
                  CHECK (btrim(display_name) <> '' AND length(display_name) <= 100),
    password_hash text        NOT NULL CHECK (password_hash LIKE 'scrypt$%'),
    created_by    uuid        REFERENCES enterprise_users (id), -- NULL: the programme (CLI)
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);
CREATE INDEX enterprise_users_by_enterprise ON enterprise_users (enterprise_id, created_at, id);

-- Carbon account reports as issued: the exact bytes handed out and their SHA-256, so a bank
-- given the file can ask the public API which enterprise and period the hash belongs to.
-- Reports are never changed; a later report of the same period is another row.
CREATE TABLE enterprise_reports (
    id            uuid        PRIMARY KEY,
    sha256        text        NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    enterprise_id uuid        NOT NULL REFERENCES enterprises (id),
    period        text        NOT NULL CHECK (period ~ '^[0-9]{4}(-(0[1-9]|1[0-2]))?$'),
    issued_at     timestamptz NOT NULL,
    issued_by     uuid        REFERENCES enterprise_users (id),
    media_type    text        NOT NULL CHECK (media_type IN ('application/pdf')),
    content       bytea       NOT NULL
);
CREATE INDEX enterprise_reports_by_enterprise ON enterprise_reports (enterprise_id, issued_at, id);
