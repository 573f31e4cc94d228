-- SPDX-License-Identifier: MIT
-- SMS campaigns (lib/campaign/, docs/api/campaigns.md): a campaign, one row
-- per recipient (its id is the SMS provider's client_reference, so that a
-- resent message is the same message to the provider), its batches (one
-- job each, key campaign:{id}:batch:{n}) and the org's opted-out numbers.
-- Every tenant table is keyed by org_id first.

CREATE TABLE campaigns (
    org_id            uuid NOT NULL REFERENCES orgs (id),
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    message           text NOT NULL CHECK (length(message) BETWEEN 1 AND 1600),
    user_id           text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    status            text NOT NULL DEFAULT 'draft' CHECK (status IN
                          ('draft', 'scheduled', 'sending', 'completed',
                           'canceled')),
    send_at           timestamptz,
    request_key       text,       -- SHA-256 of the creating Idempotency-Key
    recipients        int NOT NULL CHECK (recipients BETWEEN 1 AND 100000),
    duplicates_removed int NOT NULL DEFAULT 0,
    opted_out         int NOT NULL DEFAULT 0,  -- at creation
    batch_size        int NOT NULL CHECK (batch_size BETWEEN 1 AND 10000),
    batches           int NOT NULL DEFAULT 0,
    reservation_id    uuid,
    credits_reserved  bigint NOT NULL DEFAULT 0,
    credits_debited   bigint NOT NULL DEFAULT 0,
    credits_released  bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    progress_at       timestamptz,  -- last batch finished (stuck detection)
    finished_at       timestamptz,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, request_key),
    CHECK (credits_debited + credits_released <= credits_reserved)
);
CREATE INDEX campaigns_list ON campaigns (org_id, created_at DESC, id DESC);
CREATE INDEX campaigns_sending ON campaigns (progress_at)
    WHERE status = 'sending';

-- States: pending -> sent (provider accepted; has provider_message_id) ->
-- delivered | undelivered | failed; pending -> failed (permanent refusal,
-- no message id) | opted_out | canceled. rank: pending 0, sent 1, final 2;
-- a delivery report never lowers it.
CREATE TABLE campaign_recipients (
    org_id              uuid NOT NULL,
    campaign_id         uuid NOT NULL,
    seq                 int NOT NULL,   -- batch = seq / batch_size
    id                  uuid NOT NULL DEFAULT gen_random_uuid(),
    phone               text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    state               text NOT NULL DEFAULT 'pending' CHECK (state IN
                            ('pending', 'sent', 'delivered', 'undelivered',
                             'failed', 'opted_out', 'canceled')),
    provider_message_id text CHECK (provider_message_id IS NULL OR
                            length(provider_message_id) BETWEEN 1 AND 255),
    error               text,
    state_changes       int NOT NULL DEFAULT 0,
    sent_at             timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, campaign_id, seq),
    UNIQUE (id),
    FOREIGN KEY (org_id, campaign_id) REFERENCES campaigns (org_id, id),
    CHECK (state NOT IN ('sent', 'delivered', 'undelivered')
           OR provider_message_id IS NOT NULL)
);
CREATE UNIQUE INDEX campaign_recipients_msg ON campaign_recipients
    (org_id, provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX campaign_recipients_phone ON campaign_recipients
    (org_id, phone) WHERE state = 'pending';

CREATE TABLE campaign_batches (
    org_id       uuid NOT NULL,
    campaign_id  uuid NOT NULL,
    n            int NOT NULL CHECK (n >= 0),
    state        text NOT NULL DEFAULT 'queued' CHECK (state IN
                     ('queued', 'sending', 'done', 'canceled')),
    accepted     int NOT NULL DEFAULT 0,
    refused      int NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (org_id, campaign_id, n),
    FOREIGN KEY (org_id, campaign_id) REFERENCES campaigns (org_id, id)
);

CREATE TABLE sms_opt_outs (
    org_id      uuid NOT NULL REFERENCES orgs (id),
    phone       text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    source      text NOT NULL CHECK (source IN ('api', 'inbound')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, phone)
);

-- Cluster-wide counters of the sender and reconcile (they run outside
-- bulwark-fcgi's shared metric cells); /metrics reads them.
CREATE TABLE campaign_counts (
    name   text NOT NULL,
    label  text NOT NULL,
    n      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (name, label)
);
