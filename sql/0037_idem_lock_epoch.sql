-- SPDX-License-Identifier: MIT
-- The primary an Idempotency-Key lock was taken on (lib/platform/idem.c,
-- IDEM_EPOCH: its timeline and its postmaster's start time). After a
-- failover or a restart the session holding a lock is gone with the old
-- primary, so a retry takes such a lock over at once instead of answering
-- 409 IDEMPOTENCY_KEY_IN_USE until idem_lock_timeout_s has passed. The
-- takeover stays fenced by lock_token as the timeout's is. NULL (rows
-- locked before this migration, or by an older binary during a rolling
-- upgrade) keeps the timeout rule.
ALTER TABLE idempotency_keys ADD COLUMN lock_epoch text;
