-- SPDX-License-Identifier: MIT
-- The credit ledger (lib/credit.c): double-entry accounts and transfers,
-- two-phase reservations, bookings and refund debts. The invariants live
-- here, not only in C: a user account's available credits (balance -
-- reserved) never go negative, a transfer moves a positive amount between
-- two accounts of one org, a transfer key and an anchor (a provider payment
-- id) apply once per org, forever, and a booking cannot exist without its
-- debit (foreign key to its transfer).

CREATE TABLE credit_accounts (
    org_id      uuid NOT NULL REFERENCES orgs (id),
    id          bigserial NOT NULL,     -- global order for row locking
    kind        text NOT NULL CHECK (kind IN ('user', 'system')),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    balance     bigint NOT NULL DEFAULT 0,
    reserved    bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, kind, name),
    CONSTRAINT credit_accounts_available
        CHECK (kind <> 'user' OR balance - reserved >= 0)
);

CREATE TABLE credit_transfers (
    org_id          uuid NOT NULL,
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    transfer_key    text NOT NULL CHECK (length(transfer_key) BETWEEN 1 AND 300),
    anchor          text CHECK (anchor IS NULL OR length(anchor) BETWEEN 1 AND 200),
    reverses        text,           -- the grant anchor a refund takes back
    debit_account   bigint NOT NULL,
    credit_account  bigint NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    kind            text NOT NULL CHECK (kind IN ('grant', 'refund',
                        'booking', 'commit', 'transfer')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, transfer_key),
    CHECK (debit_account <> credit_account),
    FOREIGN KEY (org_id, debit_account) REFERENCES credit_accounts (org_id, id),
    FOREIGN KEY (org_id, credit_account) REFERENCES credit_accounts (org_id, id)
);
CREATE UNIQUE INDEX credit_transfers_anchor ON credit_transfers (org_id, anchor)
    WHERE anchor IS NOT NULL;
CREATE UNIQUE INDEX credit_transfers_reverses ON credit_transfers (org_id, reverses)
    WHERE reverses IS NOT NULL;
CREATE INDEX credit_transfers_debit ON credit_transfers (org_id, debit_account);
CREATE INDEX credit_transfers_credit ON credit_transfers (org_id, credit_account);

CREATE TABLE credit_reservations (
    org_id           uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    reservation_key  text NOT NULL
                     CHECK (length(reservation_key) BETWEEN 1 AND 200),
    account_id       bigint NOT NULL,
    user_id          text NOT NULL,
    amount           bigint NOT NULL CHECK (amount > 0),
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'committed', 'released',
                         'expired')),
    expires_at       timestamptz NOT NULL,
    transfer_id      uuid,          -- the commit's transfer
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, reservation_key),
    FOREIGN KEY (org_id, account_id) REFERENCES credit_accounts (org_id, id),
    FOREIGN KEY (org_id, transfer_id) REFERENCES credit_transfers (org_id, id),
    CHECK ((state = 'committed') = (transfer_id IS NOT NULL)),
    CHECK ((state = 'pending') = (finished_at IS NULL))
);
CREATE INDEX credit_reservations_pending ON credit_reservations
    (org_id, expires_at) WHERE state = 'pending';
CREATE INDEX credit_reservations_account ON credit_reservations
    (org_id, account_id) WHERE state = 'pending';

CREATE TABLE bookings (
    org_id       uuid NOT NULL,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id      text NOT NULL,
    class_id     text NOT NULL CHECK (length(class_id) BETWEEN 1 AND 128),
    credits      bigint NOT NULL CHECK (credits > 0),
    transfer_id  uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, transfer_id),
    FOREIGN KEY (org_id, transfer_id) REFERENCES credit_transfers (org_id, id)
);

-- What a refund could not take back because the credits were already
-- spent: the operator settles it (docs/runbooks/credit-reconciliation.md).
CREATE TABLE credit_debts (
    org_id         uuid NOT NULL,
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    account_id     bigint NOT NULL,
    user_id        text NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    grant_anchor   text NOT NULL,
    refund_anchor  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, refund_anchor),
    UNIQUE (org_id, grant_anchor),
    FOREIGN KEY (org_id, account_id) REFERENCES credit_accounts (org_id, id)
);
