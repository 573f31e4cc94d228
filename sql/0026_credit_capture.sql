-- SPDX-License-Identifier: MIT
-- Partial settlement of a credit reservation (lib/money/credit_capture.c):
-- a part of a pending reservation is captured (moved to `bookings`, like a
-- commit) or returned (released) under a key unique per org, so that a
-- retried part changes nothing; the rest stays reserved. The account's
-- reserved total is the sum of amount - captured - returned of its pending
-- reservations; a release or an expiry returns what is left.

ALTER TABLE credit_reservations
    ADD COLUMN captured bigint NOT NULL DEFAULT 0 CHECK (captured >= 0),
    ADD COLUMN returned bigint NOT NULL DEFAULT 0 CHECK (returned >= 0),
    ADD CONSTRAINT credit_reservations_parts
        CHECK (captured + returned <= amount);

ALTER TABLE credit_transfers DROP CONSTRAINT credit_transfers_kind_check;
ALTER TABLE credit_transfers ADD CONSTRAINT credit_transfers_kind_check
    CHECK (kind IN ('grant', 'refund', 'booking', 'commit', 'transfer',
        'capture'));

CREATE TABLE credit_captures (
    org_id          uuid NOT NULL,
    capture_key     text NOT NULL CHECK (length(capture_key) BETWEEN 1 AND 200),
    reservation_id  uuid NOT NULL,
    captured        bigint NOT NULL CHECK (captured >= 0),
    returned        bigint NOT NULL CHECK (returned >= 0),
    transfer_id     uuid,           -- the capture's transfer (captured > 0)
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, capture_key),
    FOREIGN KEY (org_id, reservation_id)
        REFERENCES credit_reservations (org_id, id),
    FOREIGN KEY (org_id, transfer_id) REFERENCES credit_transfers (org_id, id),
    CHECK ((captured > 0) = (transfer_id IS NOT NULL)),
    CHECK (captured + returned > 0)
);
CREATE INDEX credit_captures_resv ON credit_captures (org_id, reservation_id);
