-- SPDX-License-Identifier: MIT
-- Cheap readiness probes for /health/full (lib/platform/health.c) and the
-- export attempt fence (lib/evidence/export_run.c, export_build.c).
--
-- jobs: /health/full reads the oldest runnable job and the dead jobs of the
-- last window through these two partial indexes: one index probe and a
-- short range of dead rows, instead of a count over the whole table (whose
-- done rows are the bulk of it). Both hold only rows in that state. The
-- migration runs in a transaction, so CREATE INDEX (not CONCURRENTLY)
-- holds writes to jobs while it builds: a few seconds on a large table.
CREATE INDEX jobs_queued_run_at ON jobs (run_at) WHERE state = 'queued';
CREATE INDEX jobs_dead ON jobs (finished_at) WHERE state = 'dead';

-- periodic_runs: the period each run was scheduled with, so that a job
-- that stopped running (no run for period + grace) can be told apart from
-- one whose next slot has not come yet. NULL on rows from before.
ALTER TABLE periodic_runs ADD COLUMN period_s int
    CHECK (period_s IS NULL OR period_s >= 1);

-- exports: the attempt that owns the export. The claim increments it under
-- the row lock, so two attempts never share a number; each attempt writes
-- its own file, exports/<org>/<id>.<attempt>.tar, and marks the export
-- ready only while attempt is still its number (and attempt_token its
-- lease). A stale attempt can therefore never overwrite the file a newer
-- attempt's ready row points to.
ALTER TABLE exports ADD COLUMN attempt int NOT NULL DEFAULT 0
    CHECK (attempt >= 0);
