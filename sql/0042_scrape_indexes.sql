-- SPDX-License-Identifier: MIT
-- /metrics reads what is in flight, never the history (docs/operations.md,
-- "Metrics"): bulwark_credit_reservations_expired_total counts expired
-- reservations, which stay as rows forever; this partial index keeps that
-- count to the expired ones instead of a scan of every reservation made.
CREATE INDEX credit_reservations_expired ON credit_reservations (org_id)
    WHERE state = 'expired';
