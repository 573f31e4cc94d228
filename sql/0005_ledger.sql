-- SPDX-License-Identifier: MIT
-- The evidence ledger: a hash chain of events per org, the signed daily
-- Merkle roots over it, and the evidence files it records (lib/ledger.c,
-- lib/evidence.c; docs/verification.md describes the encodings).

-- One row per org: the chain head. Appends lock it (SELECT ... FOR UPDATE
-- through INSERT ... ON CONFLICT DO UPDATE), so concurrent appends of one
-- org are serialized and never fork or skip a seq. last_us keeps event
-- times non-decreasing along the chain even when the clock steps back.
CREATE TABLE ledger_heads (
    org_id      uuid PRIMARY KEY REFERENCES orgs (id),
    seq         bigint NOT NULL DEFAULT 0 CHECK (seq >= 0),
    hash        bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000'
                CHECK (length(hash) = 32),
    last_us     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_events (
    org_id        uuid NOT NULL REFERENCES orgs (id),
    seq           bigint NOT NULL CHECK (seq >= 1),
    type          text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_.]{0,63}$'),
    payload_hash  bytea NOT NULL CHECK (length(payload_hash) = 32),
    prev_hash     bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash          bytea NOT NULL CHECK (length(hash) = 32),
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (org_id, seq)
);
-- No fork: two events of one org never link to the same predecessor.
CREATE UNIQUE INDEX ledger_events_prev ON ledger_events (org_id, prev_hash);
CREATE INDEX ledger_events_time ON ledger_events (org_id, created_at);

-- One signed root per org and UTC day with events: RFC 6962 Merkle tree
-- head over that day's event hashes, published as a C2SP checkpoint.
CREATE TABLE ledger_roots (
    org_id       uuid NOT NULL REFERENCES orgs (id),
    day          date NOT NULL,
    root         bytea NOT NULL CHECK (length(root) = 32),
    event_count  bigint NOT NULL CHECK (event_count >= 1),
    first_seq    bigint NOT NULL CHECK (first_seq >= 1),
    last_seq     bigint NOT NULL,
    signature    bytea NOT NULL CHECK (length(signature) = 64),
    key_id       text NOT NULL CHECK (key_id ~ '^[0-9a-f]{8}$'),
    vkey         text NOT NULL,
    checkpoint   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, day),
    CHECK (last_seq - first_seq + 1 = event_count)
);
CREATE INDEX ledger_roots_seq ON ledger_roots (org_id, first_seq);

CREATE TABLE evidence (
    org_id        uuid NOT NULL REFERENCES orgs (id),
    id            uuid NOT NULL,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    content_type  text NOT NULL CHECK (length(content_type) BETWEEN 3 AND 127),
    size          bigint NOT NULL CHECK (size >= 1),
    sha256        bytea NOT NULL CHECK (length(sha256) = 32),
    ledger_seq    bigint NOT NULL,
    storage_path  text NOT NULL,   -- relative to storage_dir
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, ledger_seq) REFERENCES ledger_events (org_id, seq)
);
CREATE INDEX evidence_time ON evidence (org_id, created_at);
CREATE INDEX evidence_seq ON evidence (org_id, ledger_seq);
