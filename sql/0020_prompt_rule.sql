-- SPDX-License-Identifier: MIT
-- Each model's prompt-counting rule (issue 11): the budget hold bounds a
-- call's input tokens by ceil(prompt bytes / prompt_bytes_per_token) +
-- prompt_tokens_per_message x messages (lib/chat/budget.c,
-- docs/api/chat.md "The input bound"). The defaults (1 byte per token, 16
-- per message) are an upper bound for every byte-level BPE tokenizer; a
-- larger prompt_bytes_per_token is for a provider whose counting rule says
-- so (the simulator counts ceil(bytes / 4)).

ALTER TABLE llm_prices
    ADD COLUMN prompt_bytes_per_token int NOT NULL DEFAULT 1
        CHECK (prompt_bytes_per_token BETWEEN 1 AND 64),
    ADD COLUMN prompt_tokens_per_message int NOT NULL DEFAULT 16
        CHECK (prompt_tokens_per_message BETWEEN 0 AND 1000);
