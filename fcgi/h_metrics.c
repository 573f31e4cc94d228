/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics: the shared counters and histograms, then gauges read at
 * scrape time (dependency reachability, the configured LLM cap, job queue
 * depth by state and the age of the oldest runnable job). nginx serves it
 * to loopback only. The alert rules that read these series are
 * deploy/prometheus/bulwark-rules.yml.
 */
#include <stdint.h>

#include "ctx.h"
#include "handlers.h"
#include "campaign/campaign.h"
#include "chat/budget.h"
#include "money/credit.h"
#include "chat/line_turn.h"
#include "errspool.h"
#include "errtrack/errtrack.h"
#include "evidence/export.h"
#include "platform/jobq.h"
#include "evidence/ledger.h"
#include "core/metrics.h"
#include "resp.h"

static const char *const job_states[4] = { "queued", "running", "done",
	"dead" };

/* Appends the scrape-time gauges to out. */
static void
scrape_gauges(struct req *r, struct buf *out)
{
	struct jobq_health h;
	int64_t		   us, counts[4], held;
	enum bw_err	   pg, rd;
	int		   i;

	pg = db_ping(r->ch->mondb, &us);
	rd = rds_ping(r->ch->rds, &us);
	(void)buf_printf(out,
	    "# HELP bulwark_dependency_up 1 when the dependency answered "
	    "this scrape.\n# TYPE bulwark_dependency_up gauge\n"
	    "bulwark_dependency_up{dependency=\"postgres\"} %d\n"
	    "bulwark_dependency_up{dependency=\"redis\"} %d\n",
	    pg == BW_OK, rd == BW_OK);
	(void)buf_printf(out,
	    "# HELP bulwark_llm_global_cap LLM calls allowed in flight across "
	    "every host (llm_global_cap).\n"
	    "# TYPE bulwark_llm_global_cap gauge\n"
	    "bulwark_llm_global_cap %d\n",
	    r->ch->cfg->llm_global_cap);
	if (pg != BW_OK || jobq_counts(r->ch->mondb, NULL, counts) != BW_OK)
		return;
	/* One probe of jobs_queued_run_at; the bounded counts stop at 1 row. */
	if (jobq_health(r->ch->mondb, 1, 0, &h) == BW_OK)
		(void)buf_printf(out,
		    "# HELP bulwark_jobs_oldest_runnable_seconds Seconds the "
		    "oldest runnable queued job has waited past its run_at, "
		    "any queue (0 when none).\n"
		    "# TYPE bulwark_jobs_oldest_runnable_seconds gauge\n"
		    "bulwark_jobs_oldest_runnable_seconds %.3f\n",
		    h.oldest_s > 0 ? h.oldest_s : 0.0);
	(void)buf_addstr(out,
	    "# HELP bulwark_jobs Jobs in the queue table "
	    "by state.\n# TYPE bulwark_jobs gauge\n");
	for (i = 0; i < 4; i++)
		(void)buf_printf(out, "bulwark_jobs{state=\"%s\"} %lld\n",
		    job_states[i], (long long)counts[i]);
	if (budget_holds_in_flight(r->ch->mondb, &held) == BW_OK)
		(void)buf_printf(out,
		    "# HELP bulwark_llm_holds Budget holds in flight, all "
		    "hosts (how holds ended: bulwark_llm_holds_total).\n"
		    "# TYPE bulwark_llm_holds gauge\n"
		    "bulwark_llm_holds{state=\"held\"} %lld\n",
		    (long long)held);
	(void)export_prom(r->ch->mondb, out);
	(void)ledger_prom(r->ch->mondb, out);
	(void)line_turn_prom(r->ch->mondb, out);
	(void)campaign_prom(r->ch->mondb, r->ch->cfg->campaign_stuck_after_s,
	    out);
	(void)credit_prom(r->ch->mondb, out);
	(void)errtrack_prom(r->ch->mondb, out);
	(void)buf_printf(out,
	    "# HELP bulwark_errtrack_spool_dropped_total Child crashes not "
	    "recorded: the master's crash spool was full.\n"
	    "# TYPE bulwark_errtrack_spool_dropped_total counter\n"
	    "bulwark_errtrack_spool_dropped_total %llu\n",
	    (unsigned long long)errspool_dropped());
}

void
h_metrics(struct req *r)
{
	struct buf out;

	buf_init(&out, BW_MAX_RESPONSE);
	if (metrics_render(&out) != BW_OK) {
		buf_free(&out);
		resp_error(r, AE_INTERNAL, NULL, NULL);
		return;
	}
	scrape_gauges(r, &out);
	resp_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    buf_cstr(&out), out.len);
	buf_free(&out);
}
