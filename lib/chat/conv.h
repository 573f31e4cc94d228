/* SPDX-License-Identifier: MIT */
/*
 * Conversation state in Redis, shared by every instance and surviving
 * restarts: key "conv:{<org>}:<channel>:<user>", a JSON document with the
 * recent turns (bounded in count and size, oldest dropped first) and the
 * pipeline fields (service, area, stage, preference), TTL renewed on each
 * turn and on each read. Every write is atomic against a version field: two concurrent turns
 * both land, nothing is ever lost.
 *
 * The document:
 *   {"v":7,"turns_total":7,"service":null,"area":null,"stage":null,
 *    "preference":null,"updated_ms":1700000000000,
 *    "turns":[{"user":"…","assistant":"…","ts_ms":…,"input_tokens":0,
 *              "output_tokens":0,"cost_micros":0}, …]}
 */
#ifndef BW_CONV_H
#define BW_CONV_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/err.h"
#include "core/rds.h"

#define CONV_MAX_TURNS 20	   /* turns kept */
#define CONV_MAX_BYTES (32 * 1024) /* the encoded document */
#define CONV_MAX_TEXT  (12 * 1024) /* one message or reply, bytes */
#define CONV_TTL_S     1800	   /* renewed on each turn and read */
#define CONV_MAX_ID    128	   /* channel or user id, bytes */
#define CONV_MAX_FIELD 512	   /* a pipeline field value, bytes */
#define CONV_NFIELDS   4

/* "service", "area", "stage", "preference": the pipeline fields. */
extern const char *const conv_field_names[CONV_NFIELDS];

struct conv_usage {
	int64_t input_tokens;
	int64_t output_tokens;
	int64_t cost_micros;
};

/*
 * Pipeline fields to set with a turn; NULL members are left as they are,
 * "" clears one (stored as null).
 */
struct conv_fields {
	const char *service;
	const char *area;
	const char *stage;
	const char *preference;
};

/* The pipeline fields as stored, in conv_field_names order. */
struct conv_state {
	int  set[CONV_NFIELDS]; /* 0: null */
	char val[CONV_NFIELDS][CONV_MAX_FIELD + 1];
};

/* The fields of a document from conv_get() (NULL: none set). */
void conv_state_from_doc(struct json_object *doc, struct conv_state *);
/* Overlays f (may be NULL) on st: set members replace, "" clears. */
void conv_state_merge(struct conv_state *st, const struct conv_fields *f);
/*
 * Route schema check of a field value: 0 when it has no control
 * characters (the value goes into a one-line prompt note).
 */
int conv_field_check(const char *s, size_t len);

/* A key "conv:{<org>}:<channel>:<user>". */
#define CONV_MAX_KEY (16 + 64 + 16 + CONV_MAX_ID)
/*
 * Reads the state and renews its TTL (CONV_TTL_S from now, in the same
 * command: GETEX). *state (the caller json_object_put()s it) is the
 * document above. Returns BW_OK, BW_ENOTFOUND (none or expired),
 * BW_EINVAL (bad ids), BW_EREDIS.
 */
enum bw_err conv_get(struct rds *, const char *org_id, const char *channel,
    const char *user_id, struct json_object **state);
/*
 * conv_get() as one call of a pipeline (core/rds.h): prep fills *call
 * (pointing into gc, which must outlive it), done reads its answer after
 * rds_pipeline() with conv_get()'s returns. The caller frees call->reply.
 */
struct conv_get_call {
	char	    key[CONV_MAX_KEY];
	char	    ttl[24];
	const char *av[4];
};
enum bw_err conv_get_prep(struct conv_get_call *gc, const char *org_id,
    const char *channel, const char *user_id, struct rds_call *call);
enum bw_err
conv_get_done(const struct rds_call *call, struct json_object **state);
/*
 * Appends one turn atomically in one script (read, append, trim to
 * CONV_MAX_TURNS and CONV_MAX_BYTES, bump "v" and "turns_total", set the
 * TTL), so concurrent appends on any instance all land. Texts longer than
 * CONV_MAX_TEXT are cut at a UTF-8 boundary. u and f may be NULL.
 * *turns (may be NULL) gets turns_total after this turn, *now (may be
 * NULL) the pipeline fields as stored by it. Returns BW_OK, BW_EINVAL,
 * BW_EREDIS.
 */
enum bw_err conv_append_turn(struct rds *, const char *org_id,
    const char *channel, const char *user_id, const char *user_msg,
    const char *reply, const struct conv_usage *u, const struct conv_fields *f,
    int64_t *turns, struct conv_state *now);
/* The argv a prepared append points into; lives until it is done. */
struct conv_append_call {
	char	    key[CONV_MAX_KEY];
	char	    nums[6][24];
	const char *av[17];
	size_t	    al[17];
};
/*
 * conv_append_turn() as one call of a pipeline (core/rds.h), for a caller
 * that sends it with other commands: prep fills *call (pointing into ac
 * and the texts, which must outlive it; BW_EINVAL on bad ids), done reads
 * its answer after rds_pipeline() with conv_append_turn()'s returns. The
 * caller frees call->reply.
 */
enum bw_err conv_append_prep(struct conv_append_call *ac, const char *org_id,
    const char *channel, const char *user_id, const char *user_msg,
    const char *reply, const struct conv_usage *u, const struct conv_fields *f,
    struct rds_call *call);
enum bw_err conv_append_done(const struct rds_call *call, int64_t *turns,
    struct conv_state *now);
/*
 * conv_get_done() that also keeps the document as read: *raw (malloc'd,
 * the caller frees it; NULL when none is stored) and *rawlen, for
 * conv_put_prep().
 */
enum bw_err conv_get_done_raw(const struct rds_call *call,
    struct json_object **state, char **raw, size_t *rawlen);
/*
 * The append of a turn whose state the caller read in this request: the
 * next document (the turn appended, trimmed, "v" and "turns_total"
 * bumped, fields set, as conv_append_turn() makes it) is built here, and
 * a script that decodes and encodes nothing writes it only when the
 * stored document is still, byte for byte, the one read (raw, NULL: none
 * stored); else nothing is written and done returns BW_ERETRY: another
 * turn wrote in between, and the caller appends with conv_append_turn().
 * The same pipeline and lifetime rules as conv_append_prep(); each prep
 * is followed by conv_put_clear().
 */
struct conv_put_call {
	char		    key[CONV_MAX_KEY];
	char		    ttl[24];
	const char	   *av[5];
	size_t		    al[5];
	struct json_object *doc; /* the next document */
};
enum bw_err conv_put_prep(struct conv_put_call *pc, const char *org_id,
    const char *channel, const char *user_id, const char *raw, size_t rawlen,
    struct json_object *state, const char *user_msg, const char *reply,
    const struct conv_usage *u, const struct conv_fields *f,
    struct rds_call *call);
enum bw_err conv_put_done(const struct conv_put_call *pc,
    const struct rds_call *call, int64_t *turns, struct conv_state *now);
void	    conv_put_clear(struct conv_put_call *pc);
/*
 * Replaces the pipeline fields only if the stored version is still
 * expected_v (compare-and-set; 0 means "no state yet"). Returns BW_OK,
 * BW_ERETRY when another turn wrote first (read again and retry), BW_EINVAL,
 * BW_EREDIS.
 */
enum bw_err
conv_set_fields(struct rds *, const char *org_id, const char *channel,
    const char *user_id, int64_t expected_v, const struct conv_fields *f);
/* Deletes the state. BW_OK, BW_ENOTFOUND (there was none), BW_EREDIS. */
enum bw_err conv_delete(struct rds *, const char *org_id, const char *channel,
    const char *user_id);

#endif
