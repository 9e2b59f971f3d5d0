-- Enterprises (issue 12): the enterprise registry. One row per unified social credit code
-- (GB 32100-2015; its check character is validated by enterprises/service.py, the shape here).
-- The district is one of behaviours' imported districts (checked by the service: no foreign key
-- across owners, as residents.district_code).
CREATE TABLE enterprises (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    credit_code   text        NOT NULL UNIQUE
                  CHECK (credit_code ~ '^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$'),
    name          text        NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 200),
    industry      text        NOT NULL CHECK (industry ~ '^[A-T]([0-9]{2,4})?$'), -- GB/T 4754-2017
    district_code text        NOT NULL CHECK (district_code ~ '^[0-9]{6}$'),       -- GB/T 2260
    size_class    text        NOT NULL CHECK (size_class IN ('above', 'below')),  -- designated size
    registered_at timestamptz NOT NULL DEFAULT now()
);
