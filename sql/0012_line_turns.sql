-- SPDX-License-Identifier: MIT
-- LINE chat turns (lib/chat/line_turn.c): one row per LINE message event
-- (org, webhookEventId), inserted by the webhook in the transaction that
-- queues the event's chat_line job, and never purged: it is the event's
-- permanent anchor, so a redelivery after the 7-day purge of
-- webhook_events (and of the finished job) is acknowledged as a duplicate
-- and not answered again. It also holds the steps of the turn: the answer
-- is generated once and stored (state 'answered'), so that a failed reply
-- is retried alone, with the stored text, and never calls the model again.
-- The answer text is dropped once the reply is final; the anchor stays.

CREATE TABLE line_turns (
    org_id          uuid NOT NULL,
    event_id        text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'answered', 'replied', 'failed')),
    answer          text CHECK (length(answer) <= 5000),  -- LINE_MAX_TEXT
    chat_outcome    text CHECK (length(chat_outcome) <= 64),
    outcome         text CHECK (length(outcome) <= 64),
    reply_attempts  int NOT NULL DEFAULT 0 CHECK (reply_attempts >= 0),
    last_status     int,
    created_at      timestamptz NOT NULL DEFAULT now(),
    answered_at     timestamptz,
    finished_at     timestamptz,
    PRIMARY KEY (org_id, event_id),
    -- A final row has its outcome and no answer text left.
    CHECK ((state IN ('replied', 'failed')) =
           (outcome IS NOT NULL AND finished_at IS NOT NULL)),
    CHECK (state <> 'answered' OR answer IS NOT NULL),
    CHECK (state NOT IN ('replied', 'failed') OR answer IS NULL)
);

-- Cluster-wide counters of LINE turn outcomes and reply retries, bumped in
-- the statement that changes a turn (so each is counted exactly once) and
-- rendered by GET /metrics as bulwark_line_turns_total{outcome} and
-- bulwark_line_reply_retries_total.
CREATE TABLE line_turn_counts (
    name    text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    n       bigint NOT NULL DEFAULT 0 CHECK (n >= 0)
);
INSERT INTO line_turn_counts (name) VALUES
    ('delivered'), ('reply_token_invalid'), ('channel_token_refused'),
    ('no_channel_token'), ('rejected'), ('retries_exhausted'),
    ('no_answer'), ('reply_retry');

-- Anchors for the LINE events recorded before this migration (their
-- webhook_events rows live 7 days): a turn whose job finished is final
-- (done: delivered; dead: outcome 'unknown', the old worker kept no
-- reason), any other is queued and the worker runs it as usual. Not
-- counted in line_turn_counts.
INSERT INTO line_turns (org_id, event_id, state, outcome, created_at,
                        finished_at)
SELECT e.org_id, e.event_id,
       CASE j.state WHEN 'done' THEN 'replied' WHEN 'dead' THEN 'failed'
            ELSE 'queued' END,
       CASE j.state WHEN 'done' THEN 'delivered' WHEN 'dead' THEN 'unknown'
            END,
       e.received_at,
       CASE WHEN j.state IN ('done', 'dead')
            THEN coalesce(j.finished_at, now()) END
FROM webhook_events e
LEFT JOIN jobs j ON j.queue = 'chat_line'
     AND j.job_key = 'line:' || e.org_id::text || ':' || e.event_id
WHERE e.provider = 'line' AND e.outcome = 'processed'
ON CONFLICT (org_id, event_id) DO NOTHING;
