-- Account kinds (issue 15, item 1; enterprises/kinds, docs/account_kinds.md).
--
-- An enterprise's account kind: one of enterprises/account_kinds.json's kinds (industry,
-- energy_producer, building, road_transport, agriculture, resident). The set is data, so the
-- service checks a kind against the loaded file at registration; the table checks its shape.
-- Every enterprise registered before this migration is industrial.
ALTER TABLE enterprises
    ADD COLUMN kind text NOT NULL DEFAULT 'industry' CHECK (kind ~ '^[a-z][a-z0-9_]{0,39}$');

-- A year's account of a self-reported kind (every kind but industry, which is accounted from
-- its activity reports and graded against its industry): the activity as validated by the
-- kind's schema, and what its method made of it under the factor basis `basis` (emissions,
-- the intensity's denominator, the intensity, the grade; `result` keeps the lines with the
-- factors used). One row per enterprise and year; a new activity replaces it.
CREATE TABLE enterprise_kind_accounts (
    enterprise_id    uuid             NOT NULL REFERENCES enterprises (id),
    year             integer          NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    kind             text             NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,39}$'),
    method           text             NOT NULL,
    basis            text             NOT NULL,
    activity         jsonb            NOT NULL CHECK (jsonb_typeof(activity) = 'object'),
    emissions_kg     double precision NOT NULL,
    denominator      double precision NOT NULL,
    intensity        double precision,
    grade            text,
    result           jsonb            NOT NULL,
    recorded_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, year)
);
CREATE INDEX enterprise_kind_accounts_year ON enterprise_kind_accounts (year, kind);

-- Replaced, never deleted by the application.
INSERT INTO app_grants (table_name, privileges) VALUES
    ('enterprise_kind_accounts', 'SELECT, INSERT, UPDATE');
