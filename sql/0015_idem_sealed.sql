-- SPDX-License-Identifier: MIT
-- Idempotency rows keep neither the key nor a readable answer (issue 9
-- item 6): an export's answer carries its verification token, which must
-- not sit in plaintext in the database for 24 hours. From now on idem_key
-- holds the hex SHA-256 of the Idempotency-Key, and body is sealed
-- (AES-256-GCM, nonce || ciphertext || tag) under a key derived from the
-- Idempotency-Key itself (lib/platform/idem.c), so only a client presenting
-- the key gets the answer back. Rows stored before this migration keep
-- their plaintext body (sealed = false) until they expire, within 24 hours.

ALTER TABLE idempotency_keys ADD COLUMN sealed boolean NOT NULL DEFAULT false;
UPDATE idempotency_keys
    SET idem_key = encode(sha256(convert_to(idem_key, 'UTF8')), 'hex');
