-- Enterprises (issue 12, part A): energy and activity data in. Sites and meters, the meters'
-- readings (flagged ones stored, never summed), the monthly sums the ingest statement keeps,
-- the activity reports enterprises upload (versions kept), the region-wide green-certificate
-- claims and the months accounting must recompute. SQL in enterprises/energy_repository.py;
-- the rules in enterprises/energy.py; the reasons in docs/enterprises.md ("Data in").

CREATE TABLE enterprise_sites (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    enterprise_id uuid        NOT NULL REFERENCES enterprises (id),
    name          text        NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 200),
    address       text        NOT NULL DEFAULT '' CHECK (length(address) <= 500),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (enterprise_id, name),
    UNIQUE (enterprise_id, id) -- the meters' composite reference: a meter's site is its own
);

-- A meter pushes in its own unit (converted to the kind's canonical one on the way in). The
-- pusher is the operator (behaviours' operators: a utility or the enterprise's gateway, no
-- foreign key across owners, checked by the service) whose signed requests may carry its
-- readings; the pusher names the meter by its own reference.
CREATE TABLE enterprise_meters (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    enterprise_id uuid        NOT NULL,
    site_id       uuid        NOT NULL,
    ref           text        NOT NULL CHECK (ref ~ '^[!-~]{1,64}$'),
    kind          text        NOT NULL CHECK (kind IN ('electricity', 'natural_gas', 'coal',
                      'gasoline', 'diesel', 'fuel_oil', 'lpg', 'heat', 'steam',
                      'onsite_renewable')),
    unit          text        NOT NULL,
    factor        double precision NOT NULL CHECK (factor > 0), -- unit -> canonical unit
    interval_s    integer     NOT NULL CHECK (interval_s BETWEEN 900 AND 2678400),
    register      text        NOT NULL CHECK (register IN ('cumulative', 'interval')),
    pusher        text        NOT NULL,
    spike_factor  double precision NOT NULL CHECK (spike_factor > 1),
    created_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (enterprise_id, site_id) REFERENCES enterprise_sites (enterprise_id, id),
    UNIQUE (pusher, ref)
);
CREATE INDEX enterprise_meters_by_enterprise ON enterprise_meters (enterprise_id, site_id);

-- One row per meter and instant (the end of the interval read). value: the register (cumulative)
-- or the interval's quantity, in the canonical unit. quantity: the interval's quantity as
-- derived (NULL: a register's first reading, or one that went backwards). flag: why it is not
-- summed (a flagged reading keeps its quantity, so a reviewer sees what it would have added).
-- base, level, level_n: the meter's state after this reading (the register the next reading
-- counts from; the recent level, a moving average, and how many readings it has seen), so a
-- reading is derived from the one before it alone.
-- No foreign key to enterprise_meters here or in meter_monthly: the writer holds the meters'
-- rows locked (FOR UPDATE) while it inserts, and meters are never deleted, so the per-row
-- check would only cost (it was 60 % of a 5,000-reading batch's insert).
CREATE TABLE meter_readings (
    meter_id    uuid             NOT NULL,
    read_at     timestamptz      NOT NULL,
    value       double precision NOT NULL,
    quantity    double precision,
    flag        text             CHECK (flag IN ('backwards', 'gap', 'spike')),
    month       date             NOT NULL, -- the programme's calendar month of the interval
    base        double precision NOT NULL,
    level       double precision NOT NULL,
    level_n     integer          NOT NULL,
    received_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, read_at)
) WITH (fillfactor = 90);

-- The meters' monthly sums, maintained by the statements that write readings (deltas).
CREATE TABLE meter_monthly (
    meter_id      uuid             NOT NULL,
    month         date             NOT NULL,
    enterprise_id uuid             NOT NULL,
    kind          text             NOT NULL,
    quantity      double precision NOT NULL DEFAULT 0,
    readings      integer          NOT NULL DEFAULT 0,
    flagged       integer          NOT NULL DEFAULT 0,
    PRIMARY KEY (meter_id, month)
);
CREATE INDEX meter_monthly_by_month ON meter_monthly (month, enterprise_id);

-- Reports an enterprise uploads: one chain per (enterprise, period, start); each new content is
-- the next version and supersedes the previous one, which is kept.
CREATE TABLE activity_reports (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    enterprise_id uuid        NOT NULL REFERENCES enterprises (id),
    period        text        NOT NULL CHECK (period IN ('month', 'year')),
    period_start  date        NOT NULL CHECK (extract(day FROM period_start) = 1
                      AND (period = 'month' OR extract(month FROM period_start) = 1)),
    version       integer     NOT NULL CHECK (version >= 1),
    content_hash  bytea       NOT NULL,
    submitted_at  timestamptz NOT NULL DEFAULT now(),
    superseded_at timestamptz,
    UNIQUE (enterprise_id, period, period_start, version)
);
CREATE UNIQUE INDEX activity_reports_current ON activity_reports (enterprise_id, period, period_start)
    WHERE superseded_at IS NULL;

CREATE TABLE activity_report_lines (
    report_id      uuid             NOT NULL REFERENCES activity_reports (id),
    kind           text             NOT NULL,
    quantity       double precision NOT NULL CHECK (quantity >= 0), -- canonical unit
    given_quantity double precision NOT NULL,
    given_unit     text             NOT NULL,
    certificates   text[]           NOT NULL DEFAULT '{}',
    PRIMARY KEY (report_id, kind)
);

-- A green-electricity certificate serial is claimed once in the whole region: the primary key
-- decides (two enterprises claiming one serial concurrently: exactly one commits). A new
-- version of the same report keeps (or releases) its own claims.
CREATE TABLE green_certificate_claims (
    serial        text        PRIMARY KEY CHECK (serial ~ '^[!-~]{1,64}$'),
    enterprise_id uuid        NOT NULL REFERENCES enterprises (id),
    period        text        NOT NULL,
    period_start  date        NOT NULL,
    report_id     uuid        NOT NULL REFERENCES activity_reports (id),
    claimed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX green_certificate_claims_by_report ON green_certificate_claims (report_id);

-- The (enterprise, month) pairs whose activity changed since accounting last took them.
CREATE TABLE activity_touched (
    enterprise_id uuid        NOT NULL,
    month         date        NOT NULL,
    touched_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, month)
);
