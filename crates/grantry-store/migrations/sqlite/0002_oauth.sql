-- Pending authorize requests: the state is the credential of the callback, so
-- only its hash is kept; single use (taken with DELETE ... RETURNING).
CREATE TABLE oauth_states (
    state_hash        TEXT PRIMARY KEY,
    authorization_id  TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    code_verifier     TEXT,
    return_to         TEXT,
    created_at        TEXT NOT NULL,
    expires_at        TEXT NOT NULL
);

-- What happened to authorizations that a person should know about.
CREATE TABLE notifications (
    id                TEXT PRIMARY KEY,
    level             TEXT NOT NULL,
    authorization_id  TEXT REFERENCES records(id) ON DELETE SET NULL,
    message           TEXT NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE INDEX notifications_authorization ON notifications (authorization_id, created_at);

-- One refresh at a time per authorization across every process that shares
-- the database: a lease with a holder and an expiry.
CREATE TABLE refresh_leases (
    authorization_id  TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
    holder            TEXT NOT NULL,
    until             TEXT NOT NULL
);
