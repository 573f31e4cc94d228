-- SPDX-License-Identifier: MIT
-- People (issue 13): users of an org who log in with an e-mail and a
-- password, their invites, and their cookie sessions (lib/people/).
--
-- users: an e-mail is unique across every org (stored lower-case), so a
-- login needs only the e-mail and the password; one person in two orgs
-- uses two addresses. password_hash is NULL until set (by an invite or by
-- `bulwarkctl user set-password`), in the self-describing form
-- $scrypt$ln=14,r=8,p=1$<salt b64>$<hash b64> (lib/people/password.c).
--
-- user_invites: one-time tokens; only their SHA-256 is stored.
--
-- sessions: keyed by the SHA-256 of the opaque id the cookie carries (the
-- id itself is never stored); expires_at is the absolute expiry, the idle
-- expiry runs from last_seen_at (written at most once a minute).

CREATE TABLE users (
    org_id         uuid NOT NULL REFERENCES orgs (id),
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254
                                        AND email = lower(email)),
    role           text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    password_hash  text CHECK (password_hash IS NULL
                              OR password_hash LIKE '$scrypt$%'),
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX users_id ON users (id);
CREATE UNIQUE INDEX users_email ON users (email);

CREATE TABLE user_invites (
    org_id      uuid NOT NULL REFERENCES orgs (id),
    token_hash  bytea NOT NULL CHECK (length(token_hash) = 32),
    user_id     uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    PRIMARY KEY (org_id, token_hash)
);
CREATE UNIQUE INDEX user_invites_hash ON user_invites (token_hash);
CREATE INDEX user_invites_user ON user_invites (user_id);

CREATE TABLE sessions (
    org_id        uuid NOT NULL REFERENCES orgs (id),
    token_hash    bytea NOT NULL CHECK (length(token_hash) = 32),
    user_id       uuid NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    client_ip     text CHECK (client_ip IS NULL OR length(client_ip) <= 64),
    PRIMARY KEY (org_id, token_hash)
);
CREATE UNIQUE INDEX sessions_hash ON sessions (token_hash);
CREATE INDEX sessions_user_active ON sessions (user_id)
    WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires ON sessions (expires_at);
