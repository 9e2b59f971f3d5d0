-- app_grants.privileges may name columns with digits (`UPDATE (co2e_g)`): the CHECK of 0003
-- refused them. It still admits only what a GRANT's privilege list is made of (words, commas,
-- spaces, parentheses), so the text server/migrate.py interpolates cannot end the statement.
ALTER TABLE app_grants DROP CONSTRAINT app_grants_privileges_check;
ALTER TABLE app_grants ADD CONSTRAINT app_grants_privileges_check
    CHECK (privileges ~ '^[A-Za-z0-9_, ()]+$');
