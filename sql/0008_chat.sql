-- SPDX-License-Identifier: MIT
-- Chat governance (lib/budget.c): the price table per model, each org's chat
-- settings (daily budget, soft threshold, models, system prompt, fallback
-- reply, LINE token), the per-org budget day (spent + reserved, the day in
-- the org's time zone) and the holds placed before each provider call and
-- settled exactly once after it (or expired by bulwark-maint).

CREATE TABLE llm_prices (
    model                   text PRIMARY KEY
                            CHECK (length(model) BETWEEN 1 AND 200),
    input_micros_per_mtok   bigint NOT NULL
                            CHECK (input_micros_per_mtok BETWEEN 0 AND 1000000000000),
    output_micros_per_mtok  bigint NOT NULL
                            CHECK (output_micros_per_mtok BETWEEN 0 AND 1000000000000),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat_org_settings (
    org_id              uuid PRIMARY KEY REFERENCES orgs (id),
    daily_budget_micros bigint CHECK (daily_budget_micros IS NULL
                                      OR daily_budget_micros >= 0),
    soft_pct            int NOT NULL DEFAULT 80 CHECK (soft_pct BETWEEN 1 AND 100),
    primary_model       text CHECK (length(primary_model) BETWEEN 1 AND 200),
    fallback_model      text CHECK (length(fallback_model) BETWEEN 1 AND 200),
    hard_stop           boolean NOT NULL DEFAULT true,
    downgrade           boolean NOT NULL DEFAULT true,
    timezone            text,   -- NULL: orgs.timezone
    system_prompt       text NOT NULL DEFAULT ''
                        CHECK (length(system_prompt) <= 8000),
    fallback_reply      text CHECK (length(fallback_reply) BETWEEN 1 AND 2000),
    org_cap             int CHECK (org_cap IS NULL OR org_cap >= 1),
    line_channel_token  text CHECK (length(line_channel_token) <= 512),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- One row per org and local day: the budget row holds are placed against.
CREATE TABLE org_budget_days (
    org_id          uuid NOT NULL REFERENCES orgs (id),
    day             date NOT NULL,
    spent_micros    bigint NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    reserved_micros bigint NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0),
    holds           int NOT NULL DEFAULT 0,
    downgraded      int NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, day)
);

CREATE TABLE llm_holds (
    org_id          uuid NOT NULL REFERENCES orgs (id),
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    day             date NOT NULL,
    model           text NOT NULL,
    downgraded      boolean NOT NULL DEFAULT false,
    max_tokens      int NOT NULL,
    input_bound     int NOT NULL,       -- tokens, upper bound (bytes)
    held_micros     bigint NOT NULL CHECK (held_micros >= 0),
    state           text NOT NULL DEFAULT 'held'
                    CHECK (state IN ('held', 'settled', 'expired')),
    charged_micros  bigint CHECK (charged_micros IS NULL OR charged_micros >= 0),
    input_tokens    int,
    output_tokens   int,
    attempts        int,
    request_id      text,
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    settled_at      timestamptz,
    PRIMARY KEY (org_id, id),
    CHECK ((state = 'held') = (charged_micros IS NULL))
);
CREATE INDEX llm_holds_expiring ON llm_holds (expires_at) WHERE state = 'held';
CREATE INDEX llm_holds_day ON llm_holds (org_id, day);
