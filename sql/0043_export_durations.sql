-- SPDX-License-Identifier: MIT
-- bulwark_export_duration_seconds kept as it happens, not recomputed from
-- every export ever made at each scrape (docs/api.md, "GET /metrics"): a
-- row per histogram bucket, its upper bound le (seconds) and the exports
-- that became ready within it (cumulative, as Prometheus buckets are);
-- the +Inf row also keeps the count and the sum of the seconds. The
-- export that becomes ready adds itself in the same statement
-- (lib/evidence/export_run.c). Started from the exports already ready or
-- expired, so the series goes on where the scrape-time count left it.
CREATE TABLE export_durations (
    le  double precision PRIMARY KEY,
    n   bigint NOT NULL DEFAULT 0 CHECK (n >= 0),
    sum double precision NOT NULL DEFAULT 0
);
INSERT INTO export_durations (le, n, sum)
SELECT b.le, count(d.s) FILTER (WHERE d.s <= b.le),
    CASE WHEN b.le = 'Infinity' THEN coalesce(sum(d.s), 0) ELSE 0 END
FROM unnest(ARRAY[0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900,
    'Infinity']::double precision[]) AS b(le)
LEFT JOIN (SELECT greatest(extract(epoch FROM finished_at - started_at),
    0)::double precision AS s FROM exports
    WHERE state IN ('ready', 'expired') AND started_at IS NOT NULL
    AND finished_at IS NOT NULL) d ON true
GROUP BY b.le;
