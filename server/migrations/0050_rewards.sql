-- Rewards (issue 11, part A): merchants and their signing keys, the catalogue, coupon code pools,
-- issued rewards, per-resident usage counters (limits) and the merchants' webhook outbox.
-- The ledger knows none of these: a reward points at its hold (ledger_transfers.id) by value,
-- no foreign key across owners (as residents.district_code).

CREATE TABLE merchants (
    id                 text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name               text        NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 200),
    settlement_contact text        NOT NULL CHECK (btrim(settlement_contact) <> ''
                                                   AND length(settlement_contact) <= 500),
    webhook_url        text        CHECK (webhook_url ~ '^https?://' AND length(webhook_url) <= 2000),
    webhook_secret     text,       -- sealed (kit/cipher.py), context merchant_webhooks:<id>
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((webhook_url IS NULL) = (webhook_secret IS NULL))
);

-- The merchant API's HMAC keys, sealed at rest like operator_keys (context merchant_keys:<m>:<k>).
CREATE TABLE merchant_keys (
    merchant_id text        NOT NULL REFERENCES merchants (id),
    key_id      text        NOT NULL CHECK (key_id ~ '^[!-~]{1,64}$'),
    secret      text        NOT NULL CHECK (secret LIKE 'v1:%'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (merchant_id, key_id)
);

CREATE TABLE catalogue_items (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id        text        NOT NULL REFERENCES merchants (id),
    kind               text        NOT NULL
                       CHECK (kind IN ('coupon_code', 'generated_code', 'physical', 'fare_credit')),
    title              text        NOT NULL CHECK (btrim(title) <> '' AND length(title) <= 200),
    description        text        NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    usage_instructions text        NOT NULL DEFAULT '' CHECK (length(usage_instructions) <= 4000),
    image_urls         text[]      NOT NULL DEFAULT '{}',
    cost_points        integer     NOT NULL CHECK (cost_points > 0),
    total_stock        integer     NOT NULL CHECK (total_stock >= 0),
    -- Units left to issue: decremented by a conditional UPDATE (never below 0), given back
    -- when an unused generated/physical/fare reward is cancelled or expires.
    remaining          integer     NOT NULL CHECK (remaining >= 0 AND remaining <= total_stock),
    per_resident_limit integer     CHECK (per_resident_limit > 0),
    period_limit       integer     CHECK (period_limit > 0),
    limit_period       text        CHECK (limit_period IN ('day', 'week', 'month')),
    active_from        timestamptz NOT NULL,
    active_until       timestamptz NOT NULL,
    visible_from       timestamptz NOT NULL,
    visible_until      timestamptz NOT NULL,
    eligible_districts text[]      NOT NULL DEFAULT '{}', -- home districts; {} = every one
    validity_s         integer     NOT NULL CHECK (validity_s BETWEEN 60 AND 366 * 86400),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (active_from < active_until AND visible_from < visible_until),
    CHECK ((period_limit IS NULL) = (limit_period IS NULL))
);
CREATE INDEX catalogue_items_browse ON catalogue_items (cost_points, id);

-- A coupon item's pool of codes (imported by CSV): kept as a keyed hash (lookup, uniqueness per
-- merchant) and sealed (shown to the one resident it is issued to); never listed. A code is
-- issued at most once: a cancelled or expired reward burns its code.
CREATE TABLE reward_codes (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id     uuid        NOT NULL REFERENCES catalogue_items (id),
    merchant_id text        NOT NULL REFERENCES merchants (id),
    code_hash   bytea       NOT NULL,
    code_sealed text        NOT NULL,
    reward_id   uuid        UNIQUE,
    imported_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, code_hash)
);
CREATE INDEX reward_codes_free ON reward_codes (item_id, id) WHERE reward_id IS NULL;

CREATE TABLE rewards (
    id              uuid        PRIMARY KEY,
    item_id         uuid        NOT NULL REFERENCES catalogue_items (id),
    merchant_id     text        NOT NULL REFERENCES merchants (id),
    resident_id     uuid        NOT NULL,
    kind            text        NOT NULL,
    status          text        NOT NULL
                    CHECK (status IN ('issued', 'used', 'cancelled', 'expired', 'refunded')),
    cost_points     integer     NOT NULL CHECK (cost_points > 0),
    code_hash       bytea       NOT NULL,
    code_sealed     text        NOT NULL,
    hold_id         bigint      NOT NULL UNIQUE, -- the ledger hold (ledger_transfers.id)
    post_id         bigint      UNIQUE,          -- its posting, once confirmed
    refund_id       bigint      UNIQUE,          -- the compensating transfer, once refunded
    period_key      text,                        -- the limit period it counts in
    delivery_status text        CHECK (delivery_status IN ('pending', 'shipped', 'delivered')),
    issued_at       timestamptz NOT NULL,
    valid_until     timestamptz NOT NULL,
    used_at         timestamptz,
    closed_at       timestamptz,                 -- cancelled or expired
    refunded_at     timestamptz,
    UNIQUE (merchant_id, code_hash),
    CHECK (status <> 'used' OR post_id IS NOT NULL),
    CHECK (status <> 'refunded' OR (post_id IS NOT NULL AND refund_id IS NOT NULL))
);
CREATE INDEX rewards_of_resident ON rewards (resident_id, issued_at DESC, id DESC);
CREATE INDEX rewards_due ON rewards (valid_until) WHERE status = 'issued';
CREATE INDEX rewards_used ON rewards (merchant_id, used_at) WHERE used_at IS NOT NULL;
CREATE INDEX rewards_refunded ON rewards (merchant_id, refunded_at) WHERE refunded_at IS NOT NULL;

-- How many live rewards of an item a resident holds per limit period ('all': the lifetime
-- limit; 'D2026-03-01', 'W2026-09', 'M2026-03' in the programme's time zone). Taken by a
-- conditional upsert (the row lock serialises one resident's redemptions of one item), given
-- back when a reward is cancelled, expires or is refunded.
CREATE TABLE reward_usage (
    item_id     uuid    NOT NULL REFERENCES catalogue_items (id),
    resident_id uuid    NOT NULL,
    period_key  text    NOT NULL,
    used        integer NOT NULL CHECK (used >= 0),
    PRIMARY KEY (item_id, resident_id, period_key)
);

-- Outgoing webhooks (an outbox written in the event's own transaction; delivered after commit,
-- retried with back-off). The event id is the receiver's idempotency key.
CREATE TABLE reward_webhooks (
    event_id        uuid        PRIMARY KEY,
    merchant_id     text        NOT NULL REFERENCES merchants (id),
    event_type      text        NOT NULL
                    CHECK (event_type IN ('reward.confirmed', 'reward.refunded', 'reward.expired')),
    reward_id       uuid        NOT NULL REFERENCES rewards (id),
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    delivered_at    timestamptz,
    failed_at       timestamptz,
    last_status     text,
    UNIQUE (reward_id, event_type)
);
CREATE INDEX reward_webhooks_due ON reward_webhooks (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
