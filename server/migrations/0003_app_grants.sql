-- Least privilege. `tanpuhui migrate` connects as the owner of the schema and, after applying
-- the migrations, grants the application role (DATABASE_URL's: the API and the workers) what
-- this table says, table by table (server/migrate.py, grant_application_role). A table not
-- listed gets SELECT, INSERT, UPDATE, DELETE; no table gets TRUNCATE, REFERENCES or TRIGGER, and
-- the application role owns nothing, so it can neither alter nor drop a table nor disable its
-- triggers. A domain that needs less on its tables lists them here from its own migration.
CREATE TABLE app_grants (
    table_name text PRIMARY KEY,
    privileges text NOT NULL CHECK (privileges ~ '^[A-Za-z_, ()]+$')
);
INSERT INTO app_grants (table_name, privileges) VALUES
    ('schema_migrations', 'SELECT'),
    ('app_grants', 'SELECT');
