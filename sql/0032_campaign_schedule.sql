-- SPDX-License-Identifier: MIT
-- Scheduled campaigns (docs/api/campaigns.md, "send_at"): a campaign
-- created with send_at gets one job in queue `sms` keyed
-- campaign:{id}:start, runnable at send_at, which starts it exactly as
-- POST /send does. When the start cannot reserve the credits, the reason
-- is kept here (shown by GET) and the job is retried with backoff; a later
-- start (the job's retry or POST /send) clears it.
ALTER TABLE campaigns ADD COLUMN start_error text
    CHECK (start_error IS NULL OR length(start_error) <= 200);
CREATE INDEX campaigns_scheduled ON campaigns (send_at)
    WHERE status = 'scheduled';
