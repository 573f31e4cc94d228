-- SPDX-License-Identifier: MIT
-- Exports (lib/export.c): evidence export requests, their state machine,
-- the hash of the one-time public verification token, and a state history
-- (export_events) from which time-in-state and concurrency are measured.

CREATE TABLE exports (
    org_id          uuid NOT NULL REFERENCES orgs (id),
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'processing', 'ready',
                        'failed', 'canceled', 'expired')),
    -- What is exported: a list of evidence ids, or a creation-time range.
    evidence_ids    uuid[],
    range_from      timestamptz,
    range_to        timestamptz,
    CHECK ((evidence_ids IS NOT NULL AND range_from IS NULL
                AND range_to IS NULL)
        OR (evidence_ids IS NULL AND range_from IS NOT NULL
                AND range_to IS NOT NULL AND range_from < range_to)),
    -- SHA-256 of the 32 raw token bytes; the token is shown once.
    verification_token_hash bytea NOT NULL
                    CHECK (length(verification_token_hash) = 32),
    token_expires_at timestamptz NOT NULL,
    request_id      text CHECK (length(request_id) <= 128),
    job_id          uuid,
    -- Lease token of the job attempt that owns the `processing` state:
    -- only that attempt may mark the export ready or failed.
    attempt_token   text,
    failure_count   int NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
    error           text CHECK (length(error) <= 1024),
    error_category  text CHECK (error_category IN ('storage', 'database',
                        'validation', 'internal')),
    manifest_hash   text CHECK (manifest_hash ~ '^[0-9a-f]{64}$'),
    size            bigint CHECK (size >= 0),
    artifact_path   text,
    evidence_count  int,
    first_seq       bigint,     -- ledger range the artifact covers
    last_seq        bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    queued_at       timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    expires_at      timestamptz,    -- when a ready artifact is deleted
    canceled_at     timestamptz,
    expired_at      timestamptz,
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX exports_token ON exports (verification_token_hash);
CREATE INDEX exports_org_state ON exports (org_id, state);
CREATE INDEX exports_retention ON exports (state, finished_at)
    WHERE state IN ('ready', 'failed', 'canceled');

-- One row per state change. `at` is clock_timestamp(), so several changes
-- in one transaction keep their order and real spacing.
CREATE TABLE export_events (
    org_id      uuid NOT NULL,
    export_id   uuid NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    state       text NOT NULL CHECK (state IN ('queued', 'processing',
                    'ready', 'failed', 'canceled', 'expired')),
    -- Set on the event that ends a failed attempt.
    category    text CHECK (category IN ('storage', 'database',
                    'validation', 'internal')),
    worker      text,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (org_id, export_id, id),
    FOREIGN KEY (org_id, export_id) REFERENCES exports (org_id, id)
        ON DELETE CASCADE
);
CREATE INDEX export_events_at ON export_events (org_id, at);
