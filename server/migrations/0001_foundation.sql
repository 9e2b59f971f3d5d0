-- Foundation. Domains add their own files, numbered by owner so they order cleanly:
-- 0010-0019 ledger (points/), 0020-0029 behaviours, 0030-0039 residents and the mobile API.

-- Answers to value-moving POSTs, replayed when the same Idempotency-Key comes again
-- (same key + same request -> the stored answer; same key + another request -> 409).
CREATE TABLE idempotency_keys (
    scope          text        NOT NULL,   -- who owns the key: "operator:<id>", "resident:<id>"
    key            text        NOT NULL,
    request_hash   bytea       NOT NULL,   -- SHA-256 of method, path and body
    status         smallint    NOT NULL,
    response       bytea       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
