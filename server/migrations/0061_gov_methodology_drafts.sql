-- Government administration (issue 14, item 2): methodology versions drafted by the
-- programme's administrators before they are published. SQL in reporting/admin_repository.py.
--
-- A draft is the administrators' workspace: its factors and caps (JSON, the shape of
-- behaviours/data/methodologies.json's entries) are edited and previewed against the last days
-- of events, then published as the next version of its methodology (behaviours' tables, through
-- behaviours.service). Published versions are never edited: the draft then records which
-- version it became, and a trigger refuses any further change of a published draft to every
-- role; the methodology tables themselves are only ever inserted into by the publication.
CREATE TABLE gov_methodology_drafts (
    id                uuid        PRIMARY KEY,
    code              text        NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    title             text        NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    source            text        NOT NULL CHECK (length(source) BETWEEN 1 AND 2000),
    effective_from    timestamptz NOT NULL,
    factors           jsonb       NOT NULL CHECK (jsonb_typeof(factors) = 'array'),
    caps              jsonb       NOT NULL CHECK (jsonb_typeof(caps) = 'array'),
    created_by        text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    published_version integer     CHECK (published_version > 0),
    published_at      timestamptz,
    CHECK ((published_version IS NULL) = (published_at IS NULL))
);
CREATE INDEX gov_methodology_drafts_by_code ON gov_methodology_drafts (code, created_at);

CREATE FUNCTION gov_methodology_drafts_published_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.published_at IS NOT NULL THEN
            RAISE restrict_violation USING
                MESSAGE = 'a published methodology draft is kept as it was published',
                TABLE = 'gov_methodology_drafts';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.published_at IS NOT NULL THEN
        RAISE restrict_violation USING
            MESSAGE = format('methodology draft %s is published: it never changes', OLD.id),
            TABLE = 'gov_methodology_drafts';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER gov_methodology_drafts_published_final
    BEFORE UPDATE OR DELETE ON gov_methodology_drafts
    FOR EACH ROW EXECUTE FUNCTION gov_methodology_drafts_published_final();

INSERT INTO app_grants (table_name, privileges) VALUES
    ('gov_methodology_drafts',
     'SELECT, INSERT, DELETE, UPDATE (title, source, effective_from, factors, caps, updated_at, '
     'published_version, published_at)');
