-- Reporting (issue 14, items 3-6; docs/reporting.md): rollups the government reports read, never
-- events. Maintained set-wise by a periodic job (reporting.tasks) that reads the owners'
-- published aggregates (behaviours, points, enterprises) and replaces whole periods.
--
-- Dimensions use '*' for "all" (a margin of the cube, computed by the owner's GROUPING SETS
-- read, so distinct counts of participants are exact at every level); a district code
-- 'unknown' holds events without a district.

-- Green travel: trips, distinct participants, verified grams and points per grain
-- (day | month | year, periods in TANPUHUI_TIMEZONE) x district x mode x methodology
-- ('<code>@<version>'). Participants are distinct residents of the cell's own period: a
-- month row counts each resident once, never a sum of its days.
CREATE TABLE reporting_travel (
    grain        text        NOT NULL CHECK (grain IN ('day', 'month', 'year')),
    period       date        NOT NULL,
    district     text        NOT NULL,
    mode         text        NOT NULL,
    methodology  text        NOT NULL,
    trips        bigint      NOT NULL CHECK (trips >= 0),
    participants bigint      NOT NULL CHECK (participants >= 0),
    grams        bigint      NOT NULL CHECK (grams >= 0),
    points       bigint      NOT NULL CHECK (points >= 0),
    -- Disclosure control, applied when the period is written (reporting.disclosure): the cell
    -- is published as null with status "suppressed" (primary or complementary).
    suppressed   boolean     NOT NULL DEFAULT false,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (grain, period, district, mode, methodology)
);
-- A series reads one cell across periods (the primary key serves a period's whole table).
CREATE INDEX reporting_travel_series ON reporting_travel (grain, district, mode, methodology, period);

-- The ledger's movements of residents' points and grams per day (points.reads): what the
-- programme issued, clawed back, redeemed, refunded, expired and donated.
CREATE TABLE reporting_points (
    day           date        PRIMARY KEY,
    issued        bigint      NOT NULL DEFAULT 0,
    clawed_back   bigint      NOT NULL DEFAULT 0,
    redeemed      bigint      NOT NULL DEFAULT 0,
    refunded      bigint      NOT NULL DEFAULT 0,
    expired       bigint      NOT NULL DEFAULT 0,
    donated       bigint      NOT NULL DEFAULT 0,
    other_in      bigint      NOT NULL DEFAULT 0,
    other_out     bigint      NOT NULL DEFAULT 0,
    grams_issued  bigint      NOT NULL DEFAULT 0,
    grams_retired bigint      NOT NULL DEFAULT 0,
    computed_at   timestamptz NOT NULL DEFAULT now()
);

-- Enterprises' emissions per grain (month | year) x district x industry (GB/T 4754 at the
-- grades' digits), with what disclosure control needs: the contributors and the two largest
-- of them (the dominance rule; the two largest of a union are among each part's two largest,
-- so margins keep them exact). Offsets: verified reductions credited (grams, year rows).
CREATE TABLE reporting_enterprise (
    grain        text             NOT NULL CHECK (grain IN ('month', 'year')),
    period       date             NOT NULL,
    district     text             NOT NULL,
    industry     text             NOT NULL,
    firms        integer          NOT NULL CHECK (firms >= 0),  -- enterprises contributing
    emissions_kg double precision NOT NULL,
    energy_kgce  double precision NOT NULL,
    top1_kg      double precision NOT NULL,
    top2_kg      double precision NOT NULL,
    offsets_g    bigint           NOT NULL DEFAULT 0,
    suppressed   boolean          NOT NULL DEFAULT false,
    computed_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (grain, period, district, industry)
);

-- Enterprises per grade (1-5; 0: not graded; '*' all) per year x district x industry ('*' margins).
CREATE TABLE reporting_grades (
    year        integer     NOT NULL,
    district    text        NOT NULL,
    industry    text        NOT NULL,
    grade       text        NOT NULL CHECK (grade IN ('0', '1', '2', '3', '4', '5', '*')),
    firms       integer     NOT NULL CHECK (firms >= 0),  -- enterprises of the grade
    suppressed  boolean     NOT NULL DEFAULT false,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (year, district, industry, grade)
);

-- When each rollup was last refreshed, and through which day: the "as of" of every answer.
CREATE TABLE reporting_refreshes (
    rollup       text        PRIMARY KEY,
    refreshed_at timestamptz NOT NULL,
    first_day    date        NOT NULL,
    last_day     date        NOT NULL
);

-- Every reconciliation run: rollups against the owners' figures, to the gram.
CREATE TABLE reporting_reconciliations (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checked_at  timestamptz NOT NULL DEFAULT now(),
    first_day   date        NOT NULL,
    last_day    date        NOT NULL,
    ok          boolean     NOT NULL,
    differences jsonb       NOT NULL
);
INSERT INTO app_grants (table_name, privileges) VALUES
    ('reporting_reconciliations', 'SELECT, INSERT');

-- The refresh reads accepted events by their start time (a day's, a month's, a year's).
CREATE INDEX behaviour_events_accepted_started ON behaviour_events (started_at)
    WHERE status = 'accepted';
