-- Enterprises (issue 12, accounting): the versioned factor library, emissions per enterprise,
-- month and kind under a factor basis, budgets and their alerts, and the verified reductions
-- credited to the enterprises' ledger accounts. See docs/enterprises.md, "Accounting".

-- Grid electricity factors by year and scope (kg CO2 per kWh), seeded from
-- enterprises/factors.json. `area` is '' for the nation-wide scopes, the grid's name for
-- `regional`, the GB/T 2260 province code for `provincial`. A corrected publication is a new
-- version; a result records the version it used.
CREATE TABLE enterprise_grid_factors (
    year       integer       NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    scope      text          NOT NULL CHECK (scope IN ('national', 'regional', 'provincial',
                                                       'excl_market_nonfossil', 'fossil_only',
                                                       'ets_reporting')),
    area       text          NOT NULL DEFAULT '' CHECK (length(area) <= 32),
    version    integer       NOT NULL DEFAULT 1 CHECK (version > 0),
    kg_per_kwh numeric(10,6) NOT NULL CHECK (kg_per_kwh >= 0 AND kg_per_kwh < 10),
    published  text          NOT NULL,
    source     text          NOT NULL CHECK (source <> ''),
    created_at timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (year, scope, area, version),
    CHECK ((scope IN ('regional', 'provincial')) = (area <> ''))
);

-- Fuels' and purchased heat's factors (kg CO2 per canonical unit of enterprises/activity.py),
-- with the national guidelines' inputs when the factor is derived from them (net calorific
-- value x carbon content x oxidation rate x 44/12), and the energy equivalent (kgce per unit,
-- GB/T 2589) the energy budgets add up.
CREATE TABLE enterprise_fuel_factors (
    kind             text          NOT NULL CHECK (kind IN ('natural_gas', 'coal', 'gasoline',
                                                            'diesel', 'fuel_oil', 'lpg', 'heat',
                                                            'steam', 'electricity',
                                                            'onsite_renewable',
                                                            'green_electricity')),
    version          integer       NOT NULL DEFAULT 1 CHECK (version > 0),
    unit             text          NOT NULL,
    ncv_gj_per_unit  numeric(12,6),
    carbon_tc_per_gj numeric(12,6),
    oxidation        numeric(6,4)  CHECK (oxidation > 0 AND oxidation <= 1),
    kg_per_unit      numeric(14,6) NOT NULL CHECK (kg_per_unit >= 0),
    kgce_per_unit    numeric(14,6) NOT NULL CHECK (kgce_per_unit >= 0),
    source           text          NOT NULL CHECK (source <> ''),
    created_at       timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, version)
);

-- Emissions (and the economic figures beside them) of one enterprise, month and kind, under a
-- factor basis (`basis`: '<year or own>/<scope>/<area>'). Each row records the factor it used
-- (`factor_ref`, its year, version and value), so a result says how it was made; computing
-- under another basis adds rows and changes none of the first basis.
CREATE TABLE enterprise_emissions (
    basis          text             NOT NULL CHECK (basis <> ''),
    enterprise_id  uuid             NOT NULL REFERENCES enterprises (id),
    month          date             NOT NULL CHECK (extract(day FROM month) = 1),
    kind           text             NOT NULL,
    quantity       double precision NOT NULL,
    source         text             NOT NULL CHECK (source IN ('meter', 'report')),
    factor_ref     text,            -- grid:<year>:<scope>:<area> | fuel:<kind>; NULL: economic
    factor_year    integer,
    factor_version integer,
    factor_kg      double precision,  -- kg CO2 per unit of the kind
    kgce_per_unit  double precision,
    emissions_kg   double precision NOT NULL DEFAULT 0,
    energy_kgce    double precision NOT NULL DEFAULT 0,
    computed_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (basis, enterprise_id, month, kind),
    CHECK ((factor_ref IS NULL) = (factor_version IS NULL))
);
CREATE INDEX enterprise_emissions_month ON enterprise_emissions (basis, month);

-- Budgets: energy (kgce) or carbon (kg CO2) per month or year, set by the enterprise or by the
-- programme's administrator; the latest setting of a period stands.
CREATE TABLE enterprise_budgets (
    enterprise_id uuid             NOT NULL REFERENCES enterprises (id),
    metric        text             NOT NULL CHECK (metric IN ('energy_kgce', 'carbon_kg')),
    period_kind   text             NOT NULL CHECK (period_kind IN ('month', 'year')),
    period_start  date             NOT NULL,
    amount        double precision NOT NULL CHECK (amount > 0),
    set_by        text             NOT NULL CHECK (set_by IN ('enterprise', 'administrator')),
    updated_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, metric, period_kind, period_start),
    CHECK (extract(day FROM period_start) = 1),
    CHECK (period_kind = 'month' OR extract(month FROM period_start) = 1)
);

-- Alerts: raised once per budget, threshold and period (the unique key); cleared, not deleted,
-- when the projection falls back under the threshold; raised again (the same row) if it
-- crosses once more. `changed_at` moves on every state change and the webhook delivery
-- records which state it delivered (`delivered_state`).
CREATE TABLE enterprise_alerts (
    id              bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enterprise_id   uuid             NOT NULL REFERENCES enterprises (id),
    metric          text             NOT NULL CHECK (metric IN ('energy_kgce', 'carbon_kg')),
    period_kind     text             NOT NULL CHECK (period_kind IN ('month', 'year')),
    period_start    date             NOT NULL,
    threshold       numeric(6,4)     NOT NULL CHECK (threshold > 0),
    budget          double precision NOT NULL,
    actual          double precision NOT NULL,
    projected       double precision NOT NULL,
    state           text             NOT NULL CHECK (state IN ('raised', 'cleared')),
    raised_at       timestamptz      NOT NULL DEFAULT now(),
    cleared_at      timestamptz,
    changed_at      timestamptz      NOT NULL DEFAULT now(),
    delivered_state text             CHECK (delivered_state IN ('raised', 'cleared')),
    delivered_at    timestamptz,
    attempts        integer          NOT NULL DEFAULT 0,
    last_error      text,
    UNIQUE (enterprise_id, metric, period_kind, period_start, threshold),
    CHECK ((state = 'cleared') = (cleared_at IS NOT NULL))
);
CREATE INDEX enterprise_alerts_undelivered ON enterprise_alerts (changed_at)
    WHERE delivered_state IS DISTINCT FROM state;

-- Verified reductions credited to an enterprise's CO2E_G ledger account: once per enterprise
-- and year (the primary key decides), with the figures that made it and the transfer.
CREATE TABLE enterprise_reduction_credits (
    enterprise_id  uuid             NOT NULL REFERENCES enterprises (id),
    year           integer          NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    basis          text             NOT NULL,
    baseline_year  integer          NOT NULL,
    baseline_l     double precision NOT NULL,  -- t CO2 per 10,000 yuan, the baseline year
    year_l         double precision NOT NULL,
    added_value    double precision NOT NULL,  -- 10,000 yuan, the credited year
    reduction_g    bigint           NOT NULL CHECK (reduction_g > 0),
    transfer_key   text             NOT NULL UNIQUE,
    credited_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, year)
);
