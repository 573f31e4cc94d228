-- SPDX-License-Identifier: MIT
-- Partial refunds (lib/money/credit_refund.c): a refund takes back credits
-- in proportion to the money it returns, credits granted * refunded / paid,
-- rounded down over all refunds of the payment together, so that what is
-- taken back never exceeds the grant. Each refund has its own permanent
-- anchor, like a payment: a second partial refund is applied, a replay of
-- either changes nothing, purge or not.

-- What the payment behind a grant paid (minor units of an ISO 4217
-- currency), recorded with the grant; the first record wins.
CREATE TABLE credit_payments (
    org_id        uuid NOT NULL,
    grant_anchor  text NOT NULL CHECK (length(grant_anchor) BETWEEN 1 AND 200),
    amount        bigint NOT NULL CHECK (amount > 0),
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, grant_anchor)
);

-- One row per refund anchor, forever. source is what `refunded` counts
-- over: a Stripe charge (amount_refunded is cumulative over its refunds)
-- or the Square refund itself; the money refunded from a payment is the
-- sum over its sources of the largest `refunded` of each. credits is what
-- this refund took back (moved to `refunds` plus owed as a debt).
-- state: 'applied'; 'pending', a refund that came before its grant (the
-- grant applies it); 'refused', a currency other than the payment's.
-- refunded NULL: a refund applied before this migration, which took the
-- whole grant back.
CREATE TABLE credit_refunds (
    org_id         uuid NOT NULL,
    refund_anchor  text NOT NULL CHECK (length(refund_anchor) BETWEEN 1 AND 200),
    grant_anchor   text NOT NULL CHECK (length(grant_anchor) BETWEEN 1 AND 200),
    source         text NOT NULL CHECK (length(source) BETWEEN 1 AND 200),
    refunded       bigint CHECK (refunded IS NULL OR refunded > 0),
    currency       text CHECK (currency IS NULL OR currency ~ '^[A-Z]{3}$'),
    credits        bigint NOT NULL DEFAULT 0 CHECK (credits >= 0),
    state          text NOT NULL CHECK (state IN ('applied', 'pending', 'refused')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    applied_at     timestamptz,
    PRIMARY KEY (org_id, refund_anchor),
    CHECK ((state = 'applied') = (applied_at IS NOT NULL)),
    CHECK (state = 'applied' OR credits = 0)
);
CREATE INDEX credit_refunds_grant ON credit_refunds (org_id, grant_anchor);

-- Several refunds per grant now: one refund transfer and one debt per
-- refund anchor (still unique: the transfer's anchor, the debt's
-- refund_anchor), no longer one per grant.
DROP INDEX credit_transfers_reverses;
CREATE INDEX credit_transfers_reverses ON credit_transfers (org_id, reverses)
    WHERE reverses IS NOT NULL;
ALTER TABLE credit_debts DROP CONSTRAINT credit_debts_org_id_grant_anchor_key;
CREATE INDEX credit_debts_grant ON credit_debts (org_id, grant_anchor);

-- The refunds applied so far, each of which took its whole grant back.
INSERT INTO credit_refunds (org_id, refund_anchor, grant_anchor, source,
    refunded, currency, credits, state, created_at, applied_at)
SELECT org_id, refund_anchor, grant_anchor, refund_anchor, NULL, NULL,
    sum(amount)::bigint, 'applied', min(created_at), min(created_at)
FROM (SELECT org_id, anchor AS refund_anchor, reverses AS grant_anchor,
          amount, created_at
      FROM credit_transfers
      WHERE kind = 'refund' AND anchor IS NOT NULL AND reverses IS NOT NULL
      UNION ALL
      SELECT org_id, refund_anchor, grant_anchor, amount, created_at
      FROM credit_debts) r
GROUP BY org_id, refund_anchor, grant_anchor;

-- webhook_early_refunds (sql/0003) is no longer written: a refund before
-- its grant is a 'pending' credit_refunds row. Its rows, from before this
-- migration, still refuse their grant.
COMMENT ON TABLE webhook_early_refunds IS
    'before 0011: refunds (amount unknown) that refuse their grant';
