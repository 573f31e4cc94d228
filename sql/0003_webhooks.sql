-- SPDX-License-Identifier: MIT
-- Payment, SMS and LINE webhooks (lib/webhook.c): the signing secrets of
-- each org and provider, one row per delivered event id (replay
-- protection, purged after expires_at by bulwark-cleanup), and the SMS
-- delivery status of each message (newest provider timestamp wins).
-- The permanent anchor of a money effect is the credit ledger's, not these
-- rows: purging an event never allows a second grant.

-- Up to two active secrets per org and provider (rotation): setting a new
-- one retires all but the two newest. url is the notification URL the org
-- registered with the provider (Square signs URL + body).
CREATE TABLE webhook_secrets (
    org_id      uuid NOT NULL REFERENCES orgs (id),
    provider    text NOT NULL CHECK (provider IN ('stripe', 'square', 'line', 'sms')),
    id          bigint GENERATED ALWAYS AS IDENTITY,
    secret      text NOT NULL CHECK (length(secret) BETWEEN 1 AND 512),
    url         text CHECK (url IS NULL OR length(url) BETWEEN 1 AND 2048),
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz,
    PRIMARY KEY (org_id, provider, id)
);
CREATE INDEX webhook_secrets_active ON webhook_secrets (org_id, provider, id DESC)
    WHERE retired_at IS NULL;

-- One row per (org, provider, provider event id): the insert is the
-- serialization point of a delivery and commits with its effect. outcome is
-- what the first delivery did; a redelivery finds the row and is a
-- duplicate. No foreign key on purpose: the handler has already found the
-- org's secret, and this is the hot insert of every delivery.
CREATE TABLE webhook_events (
    org_id      uuid NOT NULL,
    provider    text NOT NULL CHECK (provider IN ('stripe', 'square', 'line', 'sms')),
    event_id    text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    event_type  text NOT NULL DEFAULT '' CHECK (length(event_type) <= 255),
    outcome     text NOT NULL DEFAULT 'processed'
                CHECK (outcome IN ('processed', 'ignored', 'duplicate')),
    received_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL DEFAULT now() + interval '7 days',
    PRIMARY KEY (org_id, provider, event_id)
);
-- Not org-first on purpose: the purge walks expiry across every org.
CREATE INDEX webhook_events_expires ON webhook_events (expires_at);

-- SMS delivery reports (Standard Webhooks): the latest status of each
-- message. A report only replaces the row when its provider timestamp is
-- newer (ties: the later state in queued < sent < delivered/undelivered/
-- failed), so a late, older report never overwrites a newer one.
CREATE TABLE sms_deliveries (
    org_id      uuid NOT NULL,
    message_id  text NOT NULL CHECK (length(message_id) BETWEEN 1 AND 255),
    status      text NOT NULL CHECK (length(status) BETWEEN 1 AND 64),
    status_rank int NOT NULL,
    provider_ts timestamptz NOT NULL,
    event_id    text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, message_id)
);

-- A refund that arrived before the grant of its payment (deliveries are
-- not ordered): the grant, when it comes, is refused. Kept, like the
-- ledger's anchors, forever.
CREATE TABLE webhook_early_refunds (
    org_id        uuid NOT NULL,
    grant_anchor  text NOT NULL CHECK (length(grant_anchor) BETWEEN 1 AND 200),
    refund_anchor text NOT NULL CHECK (length(refund_anchor) BETWEEN 1 AND 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, grant_anchor)
);
