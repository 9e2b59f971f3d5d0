-- Residents: the opaque identity every other table refers to. Personal data (phone, WeChat
-- openid) is added by the mobile API's migrations, kept apart from ledger and event rows so an
-- account can be erased while its pseudonymous ledger entries stay.
CREATE TABLE residents (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    district_code text,                         -- home district (GB/T 2260), optional
    created_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz                   -- set when the account is erased
);
