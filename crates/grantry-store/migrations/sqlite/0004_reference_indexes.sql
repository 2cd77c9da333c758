-- Deleting a record checks every foreign key that points at it. Without an
-- index led by the referencing column, each check scans its table, so deleting
-- many records took time quadratic in their number (33,000 scopes: ~25 s).
CREATE INDEX IF NOT EXISTS records_parent ON records (parent_id);
CREATE INDEX IF NOT EXISTS oauth_states_authorization ON oauth_states (authorization_id);
