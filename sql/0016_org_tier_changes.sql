-- SPDX-License-Identifier: MIT
-- Plan tier changes (issue 10): one row per change made by
-- `bulwarkctl org set-tier` (lib/platform/org.c), written in the same
-- transaction as the change. A tier decides how long ready exports are
-- kept, and retention applies the org's tier at the time of the retention
-- pass, so a downgrade can expire exports at the next pass: this history
-- says who changed what, and when.

CREATE TABLE org_tier_changes (
    org_id      uuid NOT NULL REFERENCES orgs (id),
    id          bigint GENERATED ALWAYS AS IDENTITY,
    from_tier   text NOT NULL,
    to_tier     text NOT NULL,
    actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    changed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id)
);
