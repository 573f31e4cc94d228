-- SPDX-License-Identifier: MIT
-- Idempotency-Key store (lib/idem.c, IETF httpapi Idempotency-Key draft):
-- one row per (org, key). A row with status NULL is locked by the request
-- holding lock_token; a row with a status holds the stored response that
-- a retry with the same fingerprint gets again. Rows live 24 hours; the
-- cleanup worker purges expired ones (idem_purge()).

CREATE TABLE idempotency_keys (
    org_id       uuid NOT NULL REFERENCES orgs (id),
    idem_key     text NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
    -- hex SHA-256 over method, path and the SHA-256 of the body
    fingerprint  text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    lock_token   uuid NOT NULL,
    locked_at    timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    -- the stored response; all NULL while the first request runs
    status       int CHECK (status IS NULL OR status BETWEEN 100 AND 599),
    content_type text,
    headers      text,
    body         bytea,
    completed_at timestamptz,
    PRIMARY KEY (org_id, idem_key),
    CHECK ((status IS NULL) = (completed_at IS NULL))
);
-- Not org-first on purpose: the purge walks expiry across every org.
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
