-- SPDX-License-Identifier: MIT
-- Foundation: tenants, API keys, the job queue and periodic runs.
-- Tenant tables carry org_id first in their primary key (DESIGN.md, "Past
-- one machine"), so that they can be distributed by org_id later.

CREATE TABLE orgs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    tier        text NOT NULL DEFAULT 'starter'
                CHECK (tier IN ('starter', 'pro', 'business', 'enterprise')),
    timezone    text NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    org_id      uuid NOT NULL REFERENCES orgs (id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    key_hash    bytea NOT NULL CHECK (length(key_hash) = 32),
    key_prefix  text NOT NULL,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash);
CREATE UNIQUE INDEX api_keys_id ON api_keys (id);
CREATE INDEX api_keys_prefix ON api_keys (key_prefix);

CREATE TABLE jobs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    queue         text NOT NULL CHECK (queue ~ '^[a-z0-9_.-]{1,64}$'),
    job_key       text NOT NULL CHECK (length(job_key) BETWEEN 1 AND 200),
    org_id        uuid,
    cap_key       text CHECK (cap_key IS NULL OR length(cap_key) <= 200),
    cap_limit     int CHECK (cap_limit IS NULL OR cap_limit >= 1),
    cap_slot      int,          -- advisory-lock slot held while running
    payload       jsonb NOT NULL DEFAULT '{}',
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'done', 'dead')),
    priority      int NOT NULL DEFAULT 0,
    run_at        timestamptz NOT NULL DEFAULT now(),
    attempts      int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts  int NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    lease_token   uuid,
    lease_expires_at timestamptz,
    locked_by     text,
    started_at    timestamptz,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    UNIQUE (queue, job_key),
    CHECK ((cap_key IS NULL) = (cap_limit IS NULL))
);
CREATE INDEX jobs_runnable ON jobs (queue, priority, run_at) WHERE state = 'queued';
CREATE INDEX jobs_running ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_cap ON jobs (queue, cap_key) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('done', 'dead');

CREATE TABLE periodic_runs (
    job          text NOT NULL,
    slot         timestamptz NOT NULL,
    state        text NOT NULL CHECK (state IN ('running', 'ok', 'failed', 'missed')),
    host         text,
    pid          int,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    error        text,
    PRIMARY KEY (job, slot)
);
