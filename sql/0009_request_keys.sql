-- SPDX-License-Identifier: MIT
-- Natural keys for what an Idempotency-Key creates (issue 9 item 1). The
-- key's stored response commits in the same transaction as the effect
-- (fcgi/mw_idem.c), so a retry replays it; these columns are the second
-- line: the hex SHA-256 of the Idempotency-Key that made the row, unique
-- per org, so that the database refuses a second booking, evidence row or
-- export for one key even after the key's 24-hour row is gone. NULL for
-- requests sent without a key (NULLs never collide).

ALTER TABLE bookings ADD COLUMN request_key text
    CHECK (request_key ~ '^[0-9a-f]{64}$');
ALTER TABLE bookings ADD CONSTRAINT bookings_request_key
    UNIQUE (org_id, request_key);

ALTER TABLE evidence ADD COLUMN request_key text
    CHECK (request_key ~ '^[0-9a-f]{64}$');
ALTER TABLE evidence ADD CONSTRAINT evidence_request_key
    UNIQUE (org_id, request_key);

ALTER TABLE exports ADD COLUMN request_key text
    CHECK (request_key ~ '^[0-9a-f]{64}$');
ALTER TABLE exports ADD CONSTRAINT exports_request_key
    UNIQUE (org_id, request_key);
