-- SPDX-License-Identifier: MIT
-- Per-org rate-limit overrides (lib/ratelimit.c, docs/api/ratelimits.md).
-- A row replaces the route's default limit for one scope ('org': the org's
-- own window; 'ip': each client IP's window on requests of this org).
-- Routes are the route table's names (chat, export_create, evidence).

CREATE TABLE org_rate_limits (
    org_id      uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    route       text NOT NULL CHECK (route ~ '^[a-z_]{1,64}$'),
    scope       text NOT NULL CHECK (scope IN ('org', 'ip')),
    "limit"     integer NOT NULL CHECK ("limit" BETWEEN 1 AND 1000000),
    window_s    integer NOT NULL CHECK (window_s BETWEEN 1 AND 604800),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, route, scope)
);
