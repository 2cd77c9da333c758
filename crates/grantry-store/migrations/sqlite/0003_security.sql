-- API tokens may expire; a pending authorize request started from the UI is
-- bound to the browser session that started it (the hash of its flow cookie).
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE oauth_states ADD COLUMN binding_hash TEXT;
