-- Behaviours: operators and their signing keys, residents' links to operators, methodologies as
-- versioned data, districts, GTFS, and the events table with the database's own guards against
-- counting one real activity twice. See docs/behaviours.md.

-- Reference data changes (seeds, imports) replace this token; API processes compare it once per
-- batch and reload their in-memory methodologies / districts / GTFS when it moved.
CREATE TABLE behaviour_reference (
    id         boolean     PRIMARY KEY DEFAULT true CHECK (id),
    token      uuid        NOT NULL DEFAULT gen_random_uuid(),
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operators (
    id          text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{1,62}$'),
    name        text        NOT NULL,
    kind        text        NOT NULL
        CHECK (kind IN ('transit', 'bike_share', 'utility', 'vehicle', 'app', 'platform')),
    region_code text        NOT NULL CHECK (region_code ~ '^\d{6}$'),
    gtfs_feed   text,                                 -- the GTFS feed its stop ids refer to
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

-- HMAC needs the shared secret itself, so it is stored as given (not hashed). Protect the table
-- like a key store: restrict SELECT to the API role, back it up encrypted, rotate keys.
CREATE TABLE operator_keys (
    operator_id text        NOT NULL REFERENCES operators (id),
    key_id      text        NOT NULL CHECK (length(key_id) BETWEEN 1 AND 64),
    secret      text        NOT NULL CHECK (length(secret) >= 16),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (operator_id, key_id)
);

-- A resident's consent for one operator's data: the operator knows only subject_ref.
CREATE TABLE operator_links (
    operator_id text        NOT NULL REFERENCES operators (id),
    subject_ref text        NOT NULL CHECK (length(subject_ref) BETWEEN 1 AND 128),
    resident_id uuid        NOT NULL REFERENCES residents (id),
    scope       text[]      NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (operator_id, subject_ref)
);
CREATE UNIQUE INDEX operator_links_resident ON operator_links (resident_id, operator_id);

-- Methodologies: versioned data, never constants in code (seeded from behaviours/data).
CREATE TABLE methodologies (
    code           text        NOT NULL,
    version        integer     NOT NULL CHECK (version > 0),
    title          text        NOT NULL,
    effective_from timestamptz NOT NULL,
    effective_to   timestamptz,
    source         text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, version),
    CHECK (effective_to IS NULL OR effective_to > effective_from)
);

CREATE TABLE methodology_factors (
    code             text             NOT NULL,
    version          integer          NOT NULL,
    mode             text             NOT NULL,
    behaviour        text             NOT NULL,
    unit             text             NOT NULL CHECK (unit IN ('pkm', 'km', 'step', 'kwh', 'm3')),
    factor_g         double precision NOT NULL CHECK (factor_g >= 0),
    project_g_per_kwh double precision,              -- vehicles: grid factor of the energy used
    min_distance_m   integer,
    max_distance_m   integer,
    max_speed_kmh    double precision,
    source           text             NOT NULL,
    PRIMARY KEY (code, version, mode),
    FOREIGN KEY (code, version) REFERENCES methodologies (code, version)
);

-- Caps per resident per behaviour, part of the same versioned data.
CREATE TABLE methodology_caps (
    code             text    NOT NULL,
    version          integer NOT NULL,
    behaviour        text    NOT NULL,
    daily_cap_g      bigint  CHECK (daily_cap_g > 0),
    yearly_cap_g     bigint  CHECK (yearly_cap_g > 0),
    daily_max_events integer CHECK (daily_max_events > 0),
    source           text    NOT NULL,
    PRIMARY KEY (code, version, behaviour),
    FOREIGN KEY (code, version) REFERENCES methodologies (code, version)
);

-- Districts (GB/T 2260 codes) imported from GeoJSON; geometry as WKB for shapely.
CREATE TABLE districts (
    code        text        PRIMARY KEY CHECK (code ~ '^\d{6}$'),
    name        text        NOT NULL,
    parent_code text,
    geometry    bytea       NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now()
);

-- GTFS static, only what in-vehicle distances need.
CREATE TABLE gtfs_stops (
    feed    text             NOT NULL,
    stop_id text             NOT NULL,
    name    text             NOT NULL DEFAULT '',
    lat     double precision NOT NULL,
    lon     double precision NOT NULL,
    PRIMARY KEY (feed, stop_id)
);
CREATE TABLE gtfs_shapes (
    feed     text  NOT NULL,
    shape_id text  NOT NULL,
    geometry bytea NOT NULL,                         -- WKB LineString, lon/lat
    PRIMARY KEY (feed, shape_id)
);
CREATE TABLE gtfs_trips (
    feed     text NOT NULL,
    trip_id  text NOT NULL,
    route_id text NOT NULL,
    shape_id text,
    PRIMARY KEY (feed, trip_id)
);
CREATE TABLE gtfs_stop_times (
    feed                text             NOT NULL,
    trip_id             text             NOT NULL,
    stop_sequence       integer          NOT NULL,
    stop_id             text             NOT NULL,
    shape_dist_traveled double precision,
    PRIMARY KEY (feed, trip_id, stop_sequence)
);

-- Every event an operator or the app sent, accepted or rejected, with how it was judged.
-- Duplicates (same operator + record id) are not stored twice: the primary guard below.
CREATE TABLE behaviour_events (
    id                  uuid        PRIMARY KEY,
    operator_id         text        NOT NULL,
    record_id           text        NOT NULL,
    subject_ref         text        NOT NULL,
    resident_id         uuid,                         -- null when the subject is not linked
    kind                text        NOT NULL,
    mode                text        NOT NULL,
    behaviour           text        NOT NULL,
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz NOT NULL,
    received_at         timestamptz NOT NULL,
    status              text        NOT NULL CHECK (status IN ('accepted', 'rejected')),
    reason_code         text,
    reason_message      text,
    distance_m          integer,
    distance_source     text,                         -- operator | gtfs | route | steps
    quantity            double precision,             -- steps, kWh, m³, km (vehicles)
    account             text,                         -- utility account or vehicle id
    district_code       text,
    methodology_code    text,
    methodology_version integer,
    factor_g            double precision,
    reduction_g         bigint      NOT NULL DEFAULT 0 CHECK (reduction_g >= 0),
    points              bigint      NOT NULL DEFAULT 0 CHECK (points >= 0),
    -- one key per real activity that is not a trip (meter account + period, steps per day)
    activity_key        text,
    CHECK (status = 'accepted' OR reason_code IS NOT NULL),
    CHECK (ended_at >= started_at)
);
CREATE UNIQUE INDEX behaviour_events_record ON behaviour_events (operator_id, record_id);
-- The guard against the same real trip from two sources is `trip_key` (migration 0021).
CREATE UNIQUE INDEX behaviour_events_activity ON behaviour_events (activity_key)
    WHERE status = 'accepted' AND activity_key IS NOT NULL;
CREATE INDEX behaviour_events_resident ON behaviour_events (resident_id, started_at DESC)
    WHERE resident_id IS NOT NULL;
-- Household baselines: readings of one utility account (stored for every status).
CREATE INDEX behaviour_events_meter ON behaviour_events (operator_id, mode, account, started_at)
    WHERE kind = 'meter_reading';

-- Running per-resident usage for caps; the row is also the per-resident lock that serialises
-- concurrent batches touching the same person (taken in resident order: no deadlocks).
-- used = {"y": {"<year>": {"<behaviour>": grams}}, "d": {"<date>": {"<behaviour>": [grams, n]}}},
-- days kept only within the claim window.
CREATE TABLE behaviour_usage (
    resident_id uuid  PRIMARY KEY,
    used        jsonb NOT NULL DEFAULT '{}'
) WITH (fillfactor = 70);

-- Operators' daily files, processed by a Celery task in chunks.
CREATE TABLE ingest_files (
    id           uuid        PRIMARY KEY,
    operator_id  text        NOT NULL REFERENCES operators (id),
    format       text        NOT NULL CHECK (format IN ('ndjson', 'csv')),
    content      bytea       NOT NULL,
    sha256       text        NOT NULL,
    status       text        NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'processing', 'done', 'failed')),
    records      integer     NOT NULL DEFAULT 0,
    accepted     integer     NOT NULL DEFAULT 0,
    duplicates   integer     NOT NULL DEFAULT 0,
    rejected     integer     NOT NULL DEFAULT 0,
    next_line    integer     NOT NULL DEFAULT 0,      -- resume point after a worker restart
    error        text,
    results      bytea       NOT NULL DEFAULT '',     -- NDJSON verdicts, appended per chunk
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE UNIQUE INDEX ingest_files_sha ON ingest_files (operator_id, sha256);
