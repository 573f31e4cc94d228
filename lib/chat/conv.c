/* SPDX-License-Identifier: MIT */
/*
 * Conversation state in Redis. A turn that read the document builds the
 * next one here and writes it with a compare-and-set script (the stored
 * bytes still those read); every other change, and a turn whose
 * compare-and-set lost to another turn, runs as one Lua script that reads
 * the document, changes it and writes it back with a new version and the
 * TTL. So concurrent turns on any number of instances all land (Redis
 * runs scripts one at a time); the field update is a compare-and-set on the
 * version for callers that decided from an earlier read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/conv.h"
#include "core/clock.h"
#include "core/jv.h"
#include "core/log.h"

/* Shared script head: a fresh document, field setters, the writer. */
#define CONV_LUA_HEAD                                                      \
	"local t = redis.call('TIME')\n"                                   \
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / " \
	"1000)\n"                                                          \
	"local names = { 'service', 'area', 'stage', 'preference' }\n"     \
	"local function load()\n"                                          \
	"  local raw = redis.call('GET', KEYS[1])\n"                       \
	"  local d\n"                                                      \
	"  if raw then d = cjson.decode(raw) end\n"                        \
	"  if type(d) ~= 'table' then\n"                                   \
	"    d = { v = 0, turns_total = 0 }\n"                             \
	"    for _, n in ipairs(names) do d[n] = cjson.null end\n"         \
	"  end\n"                                                          \
	"  if type(d.turns) ~= 'table' then d.turns = {} end\n"            \
	"  return d, raw ~= false and raw ~= nil\n"                        \
	"end\n"                                                            \
	"local function setf(d, base)\n"                                   \
	"  for i, n in ipairs(names) do\n"                                 \
	"    if ARGV[base + 2 * i - 1] == '1' then\n"                      \
	"      local x = ARGV[base + 2 * i]\n"                             \
	"      if x == '' then d[n] = cjson.null else d[n] = x end\n"      \
	"    end\n"                                                        \
	"  end\n"                                                          \
	"end\n"                                                            \
	"local function enc(d)\n"                                          \
	"  local s = cjson.encode(d)\n"                                    \
	"  if #d.turns == 0 then\n"                                        \
	"    s = string.gsub(s, '\"turns\":{}', '\"turns\":[]')\n"         \
	"  end\n"                                                          \
	"  return s\n"                                                     \
	"end\n"                                                            \
	"local function store(d, maxt, maxb, ttl)\n"                       \
	"  d.v = (tonumber(d.v) or 0) + 1\n"                               \
	"  d.updated_ms = now\n"                                           \
	"  while #d.turns > maxt do table.remove(d.turns, 1) end\n"        \
	"  local s = enc(d)\n"                                             \
	"  while #s > maxb and #d.turns > 1 do\n"                          \
	"    table.remove(d.turns, 1)\n"                                   \
	"    s = enc(d)\n"                                                 \
	"  end\n"                                                          \
	"  redis.call('SET', KEYS[1], s, 'EX', ttl)\n"                     \
	"end\n"

/*
 * ARGV: user msg, reply, input tokens, output tokens, cost micros, max
 * turns, max bytes, ttl s, then 4 x (present "1"/"0", value; "" clears
 * the field to null). Returns {v, turns_total, service, area, stage,
 * preference}, a field nil when it is null.
 */
static struct rds_script conv_append_lua = { .src = CONV_LUA_HEAD
	"local d = load()\n"
	"d.turns[#d.turns + 1] = { user = ARGV[1], assistant = ARGV[2],\n"
	"    ts_ms = now, input_tokens = tonumber(ARGV[3]),\n"
	"    output_tokens = tonumber(ARGV[4]), cost_micros = "
	"tonumber(ARGV[5]) }\n"
	"d.turns_total = (tonumber(d.turns_total) or 0) + 1\n"
	"setf(d, 8)\n"
	"store(d, tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]))\n"
	"local r = { d.v, d.turns_total }\n"
	"for i, n in ipairs(names) do\n"
	"  r[2 + i] = type(d[n]) == 'string' and d[n] or false\n"
	"end\n"
	"return r\n" };

/*
 * ARGV: expected v, max turns, max bytes, ttl s, then 4 x (present,
 * value). Returns the new v, or -1 when the stored v differs.
 */
static struct rds_script conv_cas_lua = { .src = CONV_LUA_HEAD
	"local d = load()\n"
	"if (tonumber(d.v) or 0) ~= tonumber(ARGV[1]) then return -1 end\n"
	"setf(d, 4)\n"
	"store(d, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))\n"
	"return d.v\n" };

/*
 * The write of a document built by the caller (conv_put_prep()): ARGV[1]
 * "1" when a document was read (ARGV[2], byte for byte) or "0" when none
 * was; ARGV[3] the next document, ARGV[4] its TTL s. Writes it and returns
 * 1 only when the stored document is still the one read; else 0.
 */
static struct rds_script conv_put_lua = {
	.src = "local raw = redis.call('GET', KEYS[1])\n"
	       "if ARGV[1] == '1' then\n"
	       "  if raw ~= ARGV[2] then return 0 end\n"
	       "elseif raw then\n"
	       "  return 0\n"
	       "end\n"
	       "redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])\n"
	       "return 1\n"
};

const char *const conv_field_names[CONV_NFIELDS] = { "service", "area", "stage",
	"preference" };

/* 1 when s is 1..CONV_MAX_ID bytes without control characters. */
static int
conv_user_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= CONV_MAX_ID)
			return 0;
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	}
	return 1;
}

/*
 * The key "conv:{<org>}:<channel>:<user>": the org is the hash tag, so one
 * org's conversations share a Cluster slot. BW_EINVAL on bad ids.
 */
static enum bw_err
conv_key(char *out, size_t len, const char *org, const char *channel,
    const char *user)
{
	int n;

	if (!rds_word_ok(org, 64) || !rds_word_ok(channel, 16) ||
	    !conv_user_ok(user))
		return BW_EINVAL;
	n = snprintf(out, len, "conv:{%s}:%s:%s", org, channel, user);
	if (n < 0 || (size_t)n >= len)
		return BW_EINVAL;
	return BW_OK;
}

/* Length of s cut to at most max bytes without splitting a UTF-8 char. */
static size_t
conv_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* *call: script on the conversation's key (av[0]) with argc arguments. */
static void
conv_script_call(struct rds_call *call, struct rds_script *script, int argc,
    const char **av, const size_t *al)
{
	memset(call, 0, sizeof(*call));
	call->script = script;
	call->nkeys = 1;
	call->argc = argc;
	call->argv = av;
	call->lens = al;
}

/* Appends 4 x (present, value) of f to av/al from index i. */
static void
conv_fields_args(const struct conv_fields *f, const char **av, size_t *al,
    int i)
{
	const char *v[4] = { NULL, NULL, NULL, NULL };
	int	    k;

	if (f != NULL) {
		v[0] = f->service;
		v[1] = f->area;
		v[2] = f->stage;
		v[3] = f->preference;
	}
	for (k = 0; k < 4; k++) {
		av[i + 2 * k] = v[k] != NULL ? "1" : "0";
		al[i + 2 * k] = 1;
		av[i + 2 * k + 1] = v[k] != NULL ? v[k] : "";
		al[i + 2 * k + 1] =
		    v[k] != NULL ? conv_cut(v[k], CONV_MAX_FIELD) : 0;
	}
}

enum bw_err
conv_get_prep(struct conv_get_call *gc, const char *org_id, const char *channel,
    const char *user_id, struct rds_call *call)
{
	enum bw_err er;

	if (gc == NULL || call == NULL)
		return BW_EINVAL;
	er = conv_key(gc->key, sizeof(gc->key), org_id, channel, user_id);
	if (er != BW_OK)
		return er;
	/* GETEX (Redis >= 6.2): the read renews the TTL of a state it
	 * finds and creates nothing, in one command, without a script. */
	snprintf(gc->ttl, sizeof(gc->ttl), "%d", CONV_TTL_S);
	gc->av[0] = "GETEX";
	gc->av[1] = gc->key;
	gc->av[2] = "EX";
	gc->av[3] = gc->ttl;
	memset(call, 0, sizeof(*call));
	call->argc = 4;
	call->argv = gc->av;
	return BW_OK;
}

enum bw_err
conv_get_done(const struct rds_call *call, struct json_object **state)
{
	const redisReply *rep = call->reply;
	enum bw_err	  er;

	if (call->er != BW_OK)
		return call->er == BW_EINVAL ? BW_EINVAL : BW_EREDIS;
	if (rep->type == REDIS_REPLY_NIL)
		return BW_ENOTFOUND;
	if (rep->type != REDIS_REPLY_STRING)
		return BW_EREDIS;
	er = jv_parse(rep->str, rep->len, 8, state);
	if (er != BW_OK) {
		log_kv(LL_ERROR, "conv: stored state is not JSON", NULL);
		er = BW_EREDIS;
	}
	return er;
}

enum bw_err
conv_get_done_raw(const struct rds_call *call, struct json_object **state,
    char **raw, size_t *rawlen)
{
	const redisReply *rep = call->reply;
	enum bw_err	  er;

	*raw = NULL;
	*rawlen = 0;
	er = conv_get_done(call, state);
	if (er != BW_OK)
		return er;
	*raw = malloc(rep->len + 1);
	if (*raw == NULL) {
		json_object_put(*state);
		*state = NULL;
		return BW_ENOMEM;
	}
	memcpy(*raw, rep->str, rep->len);
	(*raw)[rep->len] = '\0';
	*rawlen = rep->len;
	return BW_OK;
}

enum bw_err
conv_get(struct rds *rds, const char *org_id, const char *channel,
    const char *user_id, struct json_object **state)
{
	struct conv_get_call gc;
	struct rds_call	     call;
	enum bw_err	     er;

	if (rds == NULL || state == NULL)
		return BW_EINVAL;
	er = conv_get_prep(&gc, org_id, channel, user_id, &call);
	if (er != BW_OK)
		return er;
	(void)rds_pipeline(rds, &call, 1);
	er = conv_get_done(&call, state);
	if (call.reply != NULL)
		freeReplyObject(call.reply);
	return er;
}

void
conv_state_from_doc(struct json_object *doc, struct conv_state *st)
{
	struct json_object *v;
	int		    i;

	memset(st, 0, sizeof(*st));
	for (i = 0; doc != NULL && i < CONV_NFIELDS; i++) {
		if (!json_object_object_get_ex(doc, conv_field_names[i], &v) ||
		    !json_object_is_type(v, json_type_string))
			continue;
		st->set[i] = 1;
		snprintf(st->val[i], sizeof(st->val[i]), "%s",
		    json_object_get_string(v));
	}
}

void
conv_state_merge(struct conv_state *st, const struct conv_fields *f)
{
	const char *v[CONV_NFIELDS];
	int	    i;

	if (f == NULL)
		return;
	v[0] = f->service;
	v[1] = f->area;
	v[2] = f->stage;
	v[3] = f->preference;
	for (i = 0; i < CONV_NFIELDS; i++) {
		if (v[i] == NULL)
			continue;
		st->set[i] = v[i][0] != '\0';
		snprintf(st->val[i], sizeof(st->val[i]), "%.*s",
		    (int)conv_cut(v[i], CONV_MAX_FIELD), v[i]);
	}
}

int
conv_field_check(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -1;
	return 0;
}

/* The fields of an append's reply elements 2..5 into *st. */
static void
conv_state_from_reply(const redisReply *rep, struct conv_state *st)
{
	const redisReply *e;
	int		  i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < CONV_NFIELDS && (size_t)(2 + i) < rep->elements; i++) {
		e = rep->element[2 + i];
		if (e->type != REDIS_REPLY_STRING)
			continue;
		st->set[i] = 1;
		snprintf(st->val[i], sizeof(st->val[i]), "%.*s",
		    (int)(e->len < CONV_MAX_FIELD ? e->len : CONV_MAX_FIELD),
		    e->str);
	}
}

enum bw_err
conv_append_prep(struct conv_append_call *ac, const char *org_id,
    const char *channel, const char *user_id, const char *user_msg,
    const char *reply, const struct conv_usage *u, const struct conv_fields *f,
    struct rds_call *call)
{
	enum bw_err er;
	int	    i;

	if (ac == NULL || call == NULL || user_msg == NULL || reply == NULL)
		return BW_EINVAL;
	er = conv_key(ac->key, sizeof(ac->key), org_id, channel, user_id);
	if (er != BW_OK)
		return er;
	snprintf(ac->nums[0], sizeof(ac->nums[0]), "%lld",
	    (long long)(u != NULL ? u->input_tokens : 0));
	snprintf(ac->nums[1], sizeof(ac->nums[1]), "%lld",
	    (long long)(u != NULL ? u->output_tokens : 0));
	snprintf(ac->nums[2], sizeof(ac->nums[2]), "%lld",
	    (long long)(u != NULL ? u->cost_micros : 0));
	snprintf(ac->nums[3], sizeof(ac->nums[3]), "%d", CONV_MAX_TURNS);
	snprintf(ac->nums[4], sizeof(ac->nums[4]), "%d", CONV_MAX_BYTES);
	snprintf(ac->nums[5], sizeof(ac->nums[5]), "%d", CONV_TTL_S);
	ac->av[0] = ac->key;
	ac->al[0] = strlen(ac->key);
	ac->av[1] = user_msg;
	ac->al[1] = conv_cut(user_msg, CONV_MAX_TEXT);
	ac->av[2] = reply;
	ac->al[2] = conv_cut(reply, CONV_MAX_TEXT);
	for (i = 0; i < 6; i++) {
		ac->av[3 + i] = ac->nums[i];
		ac->al[3 + i] = strlen(ac->nums[i]);
	}
	conv_fields_args(f, ac->av, ac->al, 9);
	conv_script_call(call, &conv_append_lua, 17, ac->av, ac->al);
	return BW_OK;
}

enum bw_err
conv_append_done(const struct rds_call *call, int64_t *turns,
    struct conv_state *now)
{
	const redisReply *rep = call->reply;

	if (call->er != BW_OK)
		return call->er == BW_EINVAL || call->er == BW_ENOMEM
		    ? call->er
		    : BW_EREDIS;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements < 2 || rep->element[1]->type != REDIS_REPLY_INTEGER)
		return BW_EREDIS;
	if (turns != NULL)
		*turns = rep->element[1]->integer;
	if (now != NULL)
		conv_state_from_reply(rep, now);
	return BW_OK;
}

enum bw_err
conv_append_turn(struct rds *rds, const char *org_id, const char *channel,
    const char *user_id, const char *user_msg, const char *reply,
    const struct conv_usage *u, const struct conv_fields *f, int64_t *turns,
    struct conv_state *now)
{
	struct conv_append_call ac;
	struct rds_call		call;
	enum bw_err		er;

	if (rds == NULL)
		return BW_EINVAL;
	er = conv_append_prep(&ac, org_id, channel, user_id, user_msg, reply, u,
	    f, &call);
	if (er != BW_OK)
		return er;
	(void)rds_pipeline(rds, &call, 1);
	er = conv_append_done(&call, turns, now);
	if (call.reply != NULL)
		freeReplyObject(call.reply);
	return er;
}

/* tonumber(d[name]) or 0, as the scripts read a counter. */
static int64_t
conv_count(struct json_object *doc, const char *name)
{
	struct json_object *v;

	if (doc == NULL || !json_object_object_get_ex(doc, name, &v) ||
	    v == NULL)
		return 0;
	if (json_object_is_type(v, json_type_int) ||
	    json_object_is_type(v, json_type_double) ||
	    json_object_is_type(v, json_type_string))
		return json_object_get_int64(v);
	return 0;
}

/* d[name] = v; -1 when out of memory. */
static int
conv_add_int(struct json_object *d, const char *name, int64_t v)
{
	struct json_object *o = json_object_new_int64(v);

	if (o == NULL || json_object_object_add(d, name, o) != 0) {
		json_object_put(o);
		return -1;
	}
	return 0;
}

/* d[name] = s cut to max bytes; "" is null when empty_null. -1 when out
 * of memory. */
static int
conv_add_str(struct json_object *d, const char *name, const char *s, size_t max,
    int empty_null)
{
	struct json_object *o = NULL;

	if (s[0] != '\0' || !empty_null) {
		o = json_object_new_string_len(s, (int)conv_cut(s, max));
		if (o == NULL)
			return -1;
	}
	if (json_object_object_add(d, name, o) != 0) {
		json_object_put(o);
		return -1;
	}
	return 0;
}

/* The new turn's object; NULL when out of memory. */
static struct json_object *
conv_turn_obj(const char *user_msg, const char *reply,
    const struct conv_usage *u, int64_t now_ms)
{
	struct json_object *t = json_object_new_object();

	if (t == NULL)
		return NULL;
	/* The script's turn: the texts as strings even when empty. */
	if (conv_add_str(t, "user", user_msg, CONV_MAX_TEXT, 0) != 0 ||
	    conv_add_str(t, "assistant", reply, CONV_MAX_TEXT, 0) != 0 ||
	    conv_add_int(t, "ts_ms", now_ms) != 0 ||
	    conv_add_int(t, "input_tokens", u != NULL ? u->input_tokens : 0) !=
		0 ||
	    conv_add_int(t, "output_tokens",
		u != NULL ? u->output_tokens : 0) != 0 ||
	    conv_add_int(t, "cost_micros", u != NULL ? u->cost_micros : 0) !=
		0) {
		json_object_put(t);
		return NULL;
	}
	return t;
}

/*
 * The document after this turn, as the append script makes it from old
 * (NULL: none stored): old's members kept (the turns shared, not copied),
 * the turn appended, the oldest dropped past CONV_MAX_TURNS and then while
 * the encoding is over CONV_MAX_BYTES, "v" and "turns_total" bumped,
 * "updated_ms" now, the set fields replaced ("" to null). NULL when out of
 * memory.
 */
static struct json_object *
conv_next_doc(struct json_object *old, const char *user_msg, const char *reply,
    const struct conv_usage *u, const struct conv_fields *f)
{
	struct json_object *doc, *turns, *ot = NULL, *t;
	const char	   *fv[CONV_NFIELDS] = { NULL, NULL, NULL, NULL };
	int64_t		    now = clock_wall_ms();
	size_t		    i, n;
	int		    ok = 1;

	if (old != NULL && !json_object_is_type(old, json_type_object))
		old = NULL;
	doc = json_object_new_object();
	turns = json_object_new_array();
	t = conv_turn_obj(user_msg, reply, u, now);
	if (doc == NULL || turns == NULL || t == NULL)
		goto fail;
	if (old != NULL) {
		json_object_object_foreach(old, k, v)
		{
			if (strcmp(k, "turns") == 0)
				continue;
			if (json_object_object_add(doc, k,
				json_object_get(v)) != 0)
				goto fail;
		}
		if (json_object_object_get_ex(old, "turns", &ot) &&
		    !json_object_is_type(ot, json_type_array))
			ot = NULL;
	}
	n = ot != NULL ? json_object_array_length(ot) : 0;
	for (i = n + 1 > CONV_MAX_TURNS ? n + 1 - CONV_MAX_TURNS : 0; i < n;
	     i++)
		if (json_object_array_add(turns,
			json_object_get(json_object_array_get_idx(ot, i))) != 0)
			goto fail;
	if (json_object_array_add(turns, t) != 0)
		goto fail;
	t = NULL;
	if (f != NULL) {
		fv[0] = f->service;
		fv[1] = f->area;
		fv[2] = f->stage;
		fv[3] = f->preference;
	}
	for (i = 0; i < CONV_NFIELDS; i++) {
		if (fv[i] != NULL)
			ok &= conv_add_str(doc, conv_field_names[i], fv[i],
				  CONV_MAX_FIELD, 1) == 0;
		else if (!json_object_object_get_ex(doc, conv_field_names[i],
			     NULL))
			ok &= json_object_object_add(doc, conv_field_names[i],
				  NULL) == 0;
	}
	ok &= conv_add_int(doc, "v", conv_count(old, "v") + 1) == 0;
	ok &= conv_add_int(doc, "turns_total",
		  conv_count(old, "turns_total") + 1) == 0;
	ok &= conv_add_int(doc, "updated_ms", now) == 0;
	if (!ok || json_object_object_add(doc, "turns", turns) != 0)
		goto fail;
	turns = NULL;
	return doc;
fail:
	json_object_put(t);
	json_object_put(turns);
	json_object_put(doc);
	return NULL;
}

/* doc's encoding, its oldest turns dropped while it is over
 * CONV_MAX_BYTES (one kept); NULL when out of memory. */
static const char *
conv_encode(struct json_object *doc, size_t *len)
{
	struct json_object *turns = NULL;
	const char	   *s;
	const int fl = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;

	(void)json_object_object_get_ex(doc, "turns", &turns);
	for (;;) {
		s = json_object_to_json_string_length(doc, fl, len);
		if (s == NULL || *len <= CONV_MAX_BYTES ||
		    json_object_array_length(turns) <= 1)
			return s;
		if (json_object_array_del_idx(turns, 0, 1) != 0)
			return NULL;
	}
}

enum bw_err
conv_put_prep(struct conv_put_call *pc, const char *org_id, const char *channel,
    const char *user_id, const char *raw, size_t rawlen,
    struct json_object *state, const char *user_msg, const char *reply,
    const struct conv_usage *u, const struct conv_fields *f,
    struct rds_call *call)
{
	const char *s;
	size_t	    len;
	enum bw_err er;

	if (pc == NULL || call == NULL || user_msg == NULL || reply == NULL)
		return BW_EINVAL;
	memset(pc, 0, sizeof(*pc));
	er = conv_key(pc->key, sizeof(pc->key), org_id, channel, user_id);
	if (er != BW_OK)
		return er;
	pc->doc =
	    conv_next_doc(raw != NULL ? state : NULL, user_msg, reply, u, f);
	if (pc->doc == NULL)
		return BW_ENOMEM;
	s = conv_encode(pc->doc, &len);
	if (s == NULL)
		return BW_ENOMEM;
	snprintf(pc->ttl, sizeof(pc->ttl), "%d", CONV_TTL_S);
	pc->av[0] = pc->key;
	pc->al[0] = strlen(pc->key);
	pc->av[1] = raw != NULL ? "1" : "0";
	pc->al[1] = 1;
	pc->av[2] = raw != NULL ? raw : "";
	pc->al[2] = raw != NULL ? rawlen : 0;
	pc->av[3] = s;
	pc->al[3] = len;
	pc->av[4] = pc->ttl;
	pc->al[4] = strlen(pc->ttl);
	conv_script_call(call, &conv_put_lua, 5, pc->av, pc->al);
	return BW_OK;
}

enum bw_err
conv_put_done(const struct conv_put_call *pc, const struct rds_call *call,
    int64_t *turns, struct conv_state *now)
{
	const redisReply *rep = call->reply;

	if (call->er != BW_OK)
		return call->er == BW_EINVAL || call->er == BW_ENOMEM
		    ? call->er
		    : BW_EREDIS;
	if (rep == NULL || rep->type != REDIS_REPLY_INTEGER)
		return BW_EREDIS;
	if (rep->integer != 1)
		return BW_ERETRY;
	if (turns != NULL)
		*turns = conv_count(pc->doc, "turns_total");
	if (now != NULL)
		conv_state_from_doc(pc->doc, now);
	return BW_OK;
}

void
conv_put_clear(struct conv_put_call *pc)
{
	if (pc == NULL)
		return;
	json_object_put(pc->doc);
	pc->doc = NULL;
}

enum bw_err
conv_set_fields(struct rds *rds, const char *org_id, const char *channel,
    const char *user_id, int64_t expected_v, const struct conv_fields *f)
{
	char	    key[CONV_MAX_KEY];
	char	    nums[4][24];
	const char *av[13];
	size_t	    al[13];
	redisReply *rep = NULL;
	enum bw_err er;
	int	    i;

	if (rds == NULL || expected_v < 0)
		return BW_EINVAL;
	er = conv_key(key, sizeof(key), org_id, channel, user_id);
	if (er != BW_OK)
		return er;
	snprintf(nums[0], sizeof(nums[0]), "%lld", (long long)expected_v);
	snprintf(nums[1], sizeof(nums[1]), "%d", CONV_MAX_TURNS);
	snprintf(nums[2], sizeof(nums[2]), "%d", CONV_MAX_BYTES);
	snprintf(nums[3], sizeof(nums[3]), "%d", CONV_TTL_S);
	av[0] = key;
	al[0] = strlen(key);
	for (i = 0; i < 4; i++) {
		av[1 + i] = nums[i];
		al[1 + i] = strlen(nums[i]);
	}
	conv_fields_args(f, av, al, 5);
	er = rds_eval(rds, &conv_cas_lua, 1, 13, av, al, &rep);
	if (er != BW_OK) {
		er = er == BW_EINVAL ? er : BW_EREDIS;
		goto out;
	}
	if (rep->type != REDIS_REPLY_INTEGER)
		er = BW_EREDIS;
	else if (rep->integer < 0)
		er = BW_ERETRY;
out:
	if (rep != NULL)
		freeReplyObject(rep);
	return er;
}

enum bw_err
conv_delete(struct rds *rds, const char *org_id, const char *channel,
    const char *user_id)
{
	char	    key[CONV_MAX_KEY];
	const char *av[2];
	redisReply *rep = NULL;
	enum bw_err er;

	if (rds == NULL)
		return BW_EINVAL;
	er = conv_key(key, sizeof(key), org_id, channel, user_id);
	if (er != BW_OK)
		return er;
	av[0] = "DEL";
	av[1] = key;
	er = rds_cmd(rds, 2, av, NULL, &rep);
	if (er != BW_OK)
		er = BW_EREDIS;
	else if (rep->type != REDIS_REPLY_INTEGER)
		er = BW_EREDIS;
	else if (rep->integer == 0)
		er = BW_ENOTFOUND;
	if (rep != NULL)
		freeReplyObject(rep);
	return er;
}
