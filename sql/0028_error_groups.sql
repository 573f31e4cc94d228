-- SPDX-License-Identifier: MIT
-- Error tracking (lib/errtrack/, docs/runbooks/error-tracking.md): one row
-- per error group, keyed by the SHA-256 fingerprint of (code, normalised
-- message, site) within an org scope (org_id NULL: errors of no org, such
-- as a child crash; NULLS NOT DISTINCT makes the org-less scope one scope).
-- An occurrence is one upsert (INSERT ... ON CONFLICT DO UPDATE) that bumps
-- occurrence_count under the row's lock, so N concurrent occurrences count
-- N exactly; the same statement bumps the group's hour in error_group_hours
-- (the console's errors-per-hour chart). The sample (message, request id,
-- correlation id) is redacted before it is written and is the latest one.
-- org_id cannot lead the primary key (it may be NULL): the key is id, and
-- every read names the org.

CREATE TABLE error_groups (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                 uuid REFERENCES orgs (id),
    fingerprint            text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    kind                   text NOT NULL CHECK (kind IN
                               ('http_5xx', 'crash', 'job_failure', 'client')),
    code                   text NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
    site                   text NOT NULL CHECK (length(site) BETWEEN 1 AND 200),
    sample_message         text NOT NULL CHECK (length(sample_message) <= 2048),
    sample_request_id      text CHECK (length(sample_request_id) <= 128),
    sample_correlation_id  text CHECK (length(sample_correlation_id) <= 128),
    first_seen             timestamptz NOT NULL DEFAULT now(),
    last_seen              timestamptz NOT NULL DEFAULT now(),
    occurrence_count       bigint NOT NULL DEFAULT 1 CHECK (occurrence_count >= 1),
    issue_number           bigint,
    issue_url              text,
    -- the highest count threshold (10, 100, 1000) whose comment was posted
    last_comment_threshold bigint NOT NULL DEFAULT 0,
    -- failed attempts of its filing and comment jobs (a /metrics counter)
    filing_failures        bigint NOT NULL DEFAULT 0,
    CONSTRAINT error_groups_scope_fp UNIQUE NULLS NOT DISTINCT
        (org_id, fingerprint)
);
CREATE INDEX error_groups_recent ON error_groups (org_id, last_seen DESC, id DESC);

CREATE TABLE error_group_hours (
    group_id uuid NOT NULL REFERENCES error_groups (id) ON DELETE CASCADE,
    hour     timestamptz NOT NULL,
    org_id   uuid,
    n        bigint NOT NULL DEFAULT 1 CHECK (n >= 1),
    PRIMARY KEY (group_id, hour)
);
CREATE INDEX error_group_hours_org ON error_group_hours (org_id, hour);
