-- Pollutants beside carbon in the enterprise account (issue 15, item 2; enterprises/pollutants.py,
-- docs/pollutants.md): SO2, NOx, particulate matter and VOCs per enterprise, month and source,
-- in kg, with the amount and unit as given (t, kg or g). A month's lines are replaced as a whole
-- (one transaction); where several sources give one pollutant of a month, the accounting takes
-- the most trusted source (enterprises/pollutants.json, "sources").
CREATE TABLE enterprise_pollutants (
    enterprise_id uuid             NOT NULL REFERENCES enterprises (id),
    month         date             NOT NULL CHECK (extract(day FROM month) = 1
                                                   AND month BETWEEN DATE '2000-01-01'
                                                                 AND DATE '2100-12-01'),
    pollutant     text             NOT NULL CHECK (pollutant IN ('so2', 'nox', 'pm', 'vocs')),
    source        text             NOT NULL CHECK (source IN ('permit', 'online_monitoring',
                                                              'report')),
    amount_kg     double precision NOT NULL CHECK (amount_kg >= 0 AND amount_kg < 1e12),
    given_amount  double precision NOT NULL CHECK (given_amount >= 0),
    given_unit    text             NOT NULL CHECK (given_unit IN ('t', 'kg', 'g')),
    recorded_by   uuid,            -- the enterprise user; NULL: loaded by the programme
    recorded_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, month, pollutant, source)
);
CREATE INDEX enterprise_pollutants_month ON enterprise_pollutants (month);

-- A month is replaced (deleted and inserted again), never updated in place.
INSERT INTO app_grants (table_name, privileges) VALUES
    ('enterprise_pollutants', 'SELECT, INSERT, DELETE');
