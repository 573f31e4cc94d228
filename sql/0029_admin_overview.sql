-- SPDX-License-Identifier: MIT
-- The owner's overview (GET /api/v1/admin/overview, lib/money/credit.c
-- credit_today()) reads the org's credit transfers since the start of its
-- day; without this index that is every transfer the org ever made.
-- Plain CREATE INDEX (migrations run in a transaction): it holds writes to
-- credit_transfers while it builds, a few seconds on a large table.
CREATE INDEX credit_transfers_time ON credit_transfers (org_id, created_at);
