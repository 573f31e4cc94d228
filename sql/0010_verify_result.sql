-- SPDX-License-Identifier: MIT
-- The stored result of an export artifact's check (lib/evidence/
-- export_seal.c), so that public verification (export_verify.c) answers
-- without reading the artifact, and a counter of public verifications in
-- place of one ledger event per call (docs/api/exports.md).
--
-- The check runs once, in the export worker, when the export becomes
-- ready. Exports that were ready before this migration have no result
-- (artifact_valid NULL): the first public verification of each checks it
-- once and stores the result (check_claimed_at lets one request do it).

ALTER TABLE exports
    -- SHA-256 (hex) of the whole tar as it was when it passed its check.
    -- Set once, only by a check that passed; never changed afterwards.
    ADD COLUMN artifact_sha256 text
        CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
    -- Verdict of the last check: the manifest hashes to manifest_hash
    -- and every file matches the manifest (and, after the first, the
    -- file is byte for byte artifact_sha256). NULL: never checked.
    ADD COLUMN artifact_valid boolean,
    -- The artifact's stat (inode, size, mtime, ctime) when last checked:
    -- while stat() still gives this, artifact_valid describes the file.
    ADD COLUMN artifact_stat text CHECK (length(artifact_stat) <= 128),
    ADD COLUMN checked_at timestamptz,
    -- A public verification is checking the file now (a lazy check of an
    -- export without a result, or of a file whose stat changed); others
    -- answer 503 until it is done or the claim is 15 minutes old.
    ADD COLUMN check_claimed_at timestamptz,
    -- Public verifications answered 200, and the last one.
    ADD COLUMN verification_count bigint NOT NULL DEFAULT 0
        CHECK (verification_count >= 0),
    ADD COLUMN last_verified_at timestamptz;
