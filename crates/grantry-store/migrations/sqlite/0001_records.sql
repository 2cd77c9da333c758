-- Every record kind in one table: the generic operations (list, filter,
-- delete with referrer checks, export) work the same on all of them.
CREATE TABLE records (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    type        TEXT NOT NULL,
    namespace   TEXT NOT NULL DEFAULT '',
    name        TEXT NOT NULL,
    -- The reference that is part of the natural key (a scope's or client's provider).
    parent_id   TEXT REFERENCES records(id),
    -- Non-secret fields as a JSON object.
    data        TEXT NOT NULL DEFAULT '{}',
    -- Sealed secret fields as a JSON object of ciphertexts.
    secrets     TEXT NOT NULL DEFAULT '{}',
    origin      TEXT NOT NULL DEFAULT 'default',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Natural keys: (namespace, name) for providers and authorizations,
-- (provider, name) for scopes and clients. The index, not a prior lookup,
-- is what keeps concurrent creates from making two records of one key.
CREATE UNIQUE INDEX records_namespaced_key ON records (kind, namespace, name) WHERE parent_id IS NULL;
CREATE UNIQUE INDEX records_child_key ON records (kind, parent_id, name) WHERE parent_id IS NOT NULL;
CREATE INDEX records_kind_created ON records (kind, created_at);

-- Every reference, so that a delete can name what still points at a record.
-- NO ACTION (checked at the end of each statement) lets a provider and its
-- scopes go in one statement.
CREATE TABLE record_refs (
    from_id   TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    field     TEXT NOT NULL,
    position  INTEGER NOT NULL,
    to_id     TEXT NOT NULL REFERENCES records(id),
    PRIMARY KEY (from_id, field, position)
);
CREATE INDEX record_refs_to ON record_refs (to_id);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
