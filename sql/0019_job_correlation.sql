-- SPDX-License-Identifier: MIT
-- The correlation id of the request (or job) that enqueued a job, so that
-- the worker's log lines for it carry the same correlation_id as the
-- request's (issue 10): an export, a LINE turn, a campaign batch can be
-- followed from the HTTP request through every worker that touches it.

ALTER TABLE jobs ADD COLUMN correlation_id text
    CHECK (correlation_id IS NULL OR length(correlation_id) BETWEEN 1 AND 128);
