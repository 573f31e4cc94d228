#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The per-child cache (lib/platform/pcache.h, issue 11) with immediate
# invalidation, through nginx over HTTPS, with the cache on (the stack's
# default auth_cache_ttl_s = 60):
# - a key is warmed into every bulwark-fcgi child (every child of every
#   pool, found from the masters' pid files; each child proved from the
#   pid on its access lines) on a route without a limiter (whoami), a
#   limited one (GET /health/full with the key) and chat; `bulwarkctl key
#   revoke`, then at once bursts of >= 4x the children: every answer 401,
#   and they reached every child;
# - a key created after a made-up key's 401 works at once on every child;
# - a rate-limit override lowered with bulwarkctl: the next chat turns 429;
# - a chat budget set to nothing with bulwarkctl: the next turns 402;
# - the generation deleted from Redis (as a flush or an empty restart does)
#   and a key revoked in the database behind bulwarkctl's back (no bump):
#   the next requests are 401 on every child.
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BW_CONFIG BULWARK_URL BW_RUN REDIS_URL BW_LLM_SIM_URL

URL=$BULWARK_URL
SFX="$$-$RANDOM"
BODY=$TMP/chat.json
printf '{"channel":"web","user_id":"ac","message":"hello"}' >"$BODY"

cleanup() { curl -s -X POST "$BW_LLM_SIM_URL/_sim/reset" >/dev/null; }
t_on_exit cleanup

# children POOL: the children of the stack's bulwark-fcgi master in POOL
# (api: named bulwark-fcgi; chat: bw-fcgi-chat), one per line. nginx sends
# whoami and /health/full to the api pool, chat to the chat pool.
children() {
	local f m name=bulwark-fcgi
	[ "$1" = chat ] && name=bw-fcgi-chat
	for f in "$BW_RUN"/pid/bulwark-fcgi*.pid; do
		[ -f "$f" ] || continue
		read -r m <"$f" || continue
		pgrep -x -P "$m" "$name" || true
	done | sort -u
}
# pool_of KIND: the pool nginx sends a request kind to.
pool_of() { case $1 in chat) echo chat ;; *) echo api ;; esac; }

# new_org NAME: sets ORG and KEY; the org's chat limits lifted.
new_org() {
	ORG=$(t_ctl org create --name "e2e-authcache-$1-$SFX" | jq -r .id)
	KEY=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
	t_ctl ratelimit set --org "$ORG" --route chat --scope org \
	    --limit 1000000 --window-s 60 >/dev/null
	t_ctl ratelimit set --org "$ORG" --route chat --scope ip \
	    --limit 1000000 --window-s 10 >/dev/null
}

# filler I TAG POOL: the curl config of one slow request of the filler org,
# interleaved with the requests under test. Chat: a turn the simulator
# answers after 150 ms. Api: a GET /health/full (its PostgreSQL and Redis
# checks take a few ms, against well under one for a whoami). They hold
# children, so the requests under test reach every child, not only the
# few the kernel wakes first: an idle child is woken in the order the
# children joined the listen socket's epoll (EPOLLEXCLUSIVE), and one that
# closes its connection as soon as it has answered (fcgi/req.c) is idle
# again before the next request comes.
filler() {
	printf 'next\ninsecure\nmax-time = 60\n'
	printf 'write-out = "F%%{http_code}\\n"\n'
	printf 'header = "Authorization: Bearer %s"\n' "$FILL_KEY"
	printf 'header = "X-Request-ID: ac-%s-fill-%s-%d"\n' "$SFX" "$2" "$1"
	printf 'output = "/dev/null"\n'
	# Addresses of their own (nginx's and the health route's limits are
	# per address): 127.0.3.33-64.
	printf 'interface = "127.0.3.%d"\n' $(($1 % 32 + 33))
	if [ "$3" = api ]; then
		printf 'url = "%s/health/full"\n' "$URL"
		return
	fi
	printf 'header = "Content-Type: application/json"\n'
	printf 'data-binary = "@%s"\n' "$BODY"
	printf 'url = "%s/api/v1/chat"\n' "$URL"
}

# burst TAG KEY N KIND...: N requests of each KIND (whoami, health, chat)
# in parallel with key KEY, X-Request-ID "ac-$SFX-TAG-<i>". Statuses one a
# line in $TMP/TAG.codes.
burst() {
	local tag=$1 key=$2 n=$3 kind i cfg=$TMP/$1.cfg fill=
	shift 3
	case " $* " in *" chat "*) fill=chat ;; *) fill=api ;; esac
	: >"$cfg"
	for ((i = 0; i < n; i++)); do
		for kind in "$@"; do
			{
				# Per-transfer options go in every group: `next`
				# resets them.
				[ -s "$cfg" ] && printf 'next\n'
				printf 'insecure\nmax-time = 60\n'
				printf 'write-out = "%%{http_code}\\n"\n'
				printf 'header = "Authorization: Bearer %s"\n' "$key"
				printf 'header = "X-Request-ID: ac-%s-%s-%s-%d"\n' \
				    "$SFX" "$tag" "$kind" "$i"
				printf 'output = "/dev/null"\n'
				# nginx's per-IP limit_req (50 r/s, burst
				# 100) is not what this test is about: 32
				# client addresses share the load.
				printf 'interface = "127.0.3.%d"\n' $((i % 32 + 1))
				case $kind in
				whoami) printf 'url = "%s/api/v1/whoami"\n' "$URL" ;;
				health) printf 'url = "%s/health/full"\n' "$URL" ;;
				chat)
					printf 'header = "Content-Type: application/json"\n'
					printf 'data-binary = "@%s"\n' "$BODY"
					printf 'url = "%s/api/v1/chat"\n' "$URL"
					;;
				esac
			} >>"$cfg"
		done
		filler "$i" "$tag" "$fill" >>"$cfg"
	done
	# At most 64 at once, in config order: as each answer comes another
	# starts, so a chat child that frees up finds a request waiting,
	# whichever it is.
	curl -s --parallel --parallel-max 64 -K "$cfg" 2>/dev/null |
	    grep -v '^F' >"$TMP/$tag.codes" || true
	sleep 0.3 # the access line is written after the answer
}

# pids PREFIX POOL [STATUS]: the pid of every access line whose request id
# starts with "ac-$SFX-PREFIX", of a request kind POOL serves (and with
# that status), one a line.
pids() {
	cat "$BW_RUN"/log/bulwark-fcgi*.log 2>/dev/null |
	    grep -F "\"ac-$SFX-$1" |
	    jq -r --arg p "ac-$SFX-$1" --arg pool "$2" --arg s "${3:-}" \
		'select(.msg == "request" and (.request_id // "" | startswith($p))
		    and ((.request_id | test("-chat-[0-9]+$")) == ($pool == "chat"))
		    and ($s == "" or (.status | tostring) == $s)) | .pid' \
		2>/dev/null
}

# missing PREFIX STATUS MIN KIND...: the children of the pools serving KINDs
# not (yet) in pids PREFIX POOL STATUS ("" any), or with fewer than MIN
# such answers.
missing() {
	local pre=$1 st=$2 min=$3 pool
	shift 3
	for pool in $(for k in "$@"; do pool_of "$k"; done | sort -u); do
		comm -23 <(cover "$pool") <(pids "$pre" "$pool" "$st" |
		    sort | uniq -c | awk -v m="$min" '$1 >= m { print $2 }' |
		    sort -u)
	done
}

# cover POOL: the children a check must reach: with COVER set (the tag of
# a warm-up), those still alive that served the key there with 200 (the
# ones that hold it; a child recycled meanwhile starts empty); else every
# child of POOL.
COVER=
cover() {
	if [ -n "$COVER" ]; then
		comm -12 <(children "$1") <(pids "$COVER" "$1" 200 | sort -u)
	else
		children "$1"
	fi
}

# burst_n KIND...: requests of each kind per burst: 2x the children of the
# largest pool the kinds reach.
burst_n() {
	local n=0 c k
	for k in "$@"; do
		c=$(children "$(pool_of "$k")" | wc -l)
		[ "$c" -gt "$n" ] && n=$c
	done
	echo $((2 * n))
}

# warm TAG KEY KIND...: bursts until every child served KEY with 200 at
# least 3 times (a child's first request only learns the generation; its
# next ones fill and hit its cache); at most 16 rounds (in a CI lane one
# chat child took mostly filler turns: 2 of the key's in 8 rounds). 0 when
# every child did.
warm() {
	local tag=$1 key=$2 r
	shift 2
	for ((r = 0; r < 16; r++)); do
		burst "$tag-$r" "$key" "$(burst_n "$@")" "$@"
		[ -z "$(missing "$tag-" 200 3 "$@")" ] && return 0
	done
	return 1
}

# refused TAG KEY WANT KIND...: bursts of 4x the children until they reached
# every child (at most 16 rounds; a CI run's 6 rounds of 16 whoamis reached
# 3 of 4 api children, 83 of them the first); every answer must be WANT.
# Prints "<answers> <not WANT> <children missed>".
refused() {
	local tag=$1 key=$2 want=$3 r total=0 bad=0 c
	shift 3
	for ((r = 0; r < 16; r++)); do
		burst "$tag-$r" "$key" "$((2 * $(burst_n "$@")))" "$@"
		c=$(wc -l <"$TMP/$tag-$r.codes")
		total=$((total + c))
		bad=$((bad + $(grep -cv "^$want\$" "$TMP/$tag-$r.codes" || true)))
		[ -z "$(missing "$tag-" "" 1 "$@")" ] && break
	done
	echo "$total $bad $(missing "$tag-" "" 1 "$@" | wc -l)"
}


NAPI=$(children api | wc -l)
NCHAT=$(children chat | wc -l)
NCH=$((NAPI + NCHAT))
t_ge "bulwark-fcgi has api children" 1 "$NAPI"
t_ge "bulwark-fcgi has chat children" 1 "$NCHAT"
t_eq "the cache is on (auth_cache_ttl_s)" 60 \
    "$(bulwark-fcgi -c "$BW_CONFIG" --check-config |
	awk -F' *= *' '$1 == "auth_cache_ttl_s" { print $2 }')"
curl -s -X POST "$BW_LLM_SIM_URL/_sim/reset" >/dev/null
new_org filler
FILL_KEY=$KEY
curl -s -X POST "$BW_LLM_SIM_URL/_sim/script" \
    -d "{\"org\":\"$ORG\",\"delay_ms\":150}" >/dev/null

# --- a revoked key is refused on the very next request on every child -------
new_org revoke
RK=$KEY
RK_ID=$(t_sql "SELECT id FROM api_keys WHERE org_id = '$ORG'")
h0=$(t_metric 'bulwark_pcache_hits_total{cache="auth"}')
if warm w "$RK" whoami health chat; then
	t_ok "the key warmed into every child ($NCH, each with 3 200s)"
else
	t_fail "the key warmed into every child" "missed: $(missing w- 200 3 whoami health chat | tr '\n' ' ')"
fi
h1=$(t_metric 'bulwark_pcache_hits_total{cache="auth"}')
t_ge "the children answered from the cache (auth hits $h0 -> $h1)" \
    $((${h0:-0} + NCH)) "${h1:-0}"
t_check "bulwarkctl key revoke: exit 0" t_ctl key revoke "$RK_ID"
COVER=w-
read -r total bad missed < <(refused r "$RK" 401 whoami health chat)
COVER=
t_ge "after revoke: >= 4x the children answered ($total)" $((4 * NCH)) \
    "$total"
t_eq "after revoke: every answer 401 (not 401: $bad of $total)" 0 "$bad"
t_eq "after revoke: the answers came from every child that held the key (missed: $missed)" 0 "$missed"

# --- a key created after a made-up key's 401 works at once --------------------
BOGUS="bwk_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | cut -c1-43)"
read -r total bad missed < <(refused n "$BOGUS" 401 whoami health)
t_eq "a made-up key: 401 on every child (not 401: $bad, missed: $missed)" \
    "0 0" "$bad $missed"
NK=$(t_ctl key create --org "$ORG" --role member | jq -r .key)
read -r total bad missed < <(refused c "$NK" 200 whoami)
t_eq "a key created then: 200 at once on every child (not 200: $bad of $total, missed: $missed)" \
    "0 0" "$bad $missed"

# --- a lowered rate-limit override: the next turns are refused ---------------
new_org rate
if warm rw "$KEY" chat; then
	t_ok "chat overrides warmed into every chat child"
else
	t_fail "chat overrides warmed into every chat child" \
	    "missed: $(missing rw- 200 3 chat | tr '\n' ' ')"
fi
t_check "bulwarkctl ratelimit set --limit 1: exit 0" \
    t_ctl ratelimit set --org "$ORG" --route chat --scope org --limit 1 \
    --window-s 600
COVER=rw-
read -r total bad missed < <(refused rr "$KEY" 429 chat)
COVER=
t_eq "after the override: every chat turn 429 on every child (not 429: $bad of $total, missed: $missed)" \
    "0 0" "$bad $missed"

# --- a chat budget set to nothing: the next turns are refused ----------------
new_org budget
t_ctl price set --model "e2e-ac-$SFX" --input-micros-per-mtok 1000000 \
    --output-micros-per-mtok 1000000 >/dev/null
t_ctl budget set --org "$ORG" --daily-micros 1000000000 --primary-model \
    "e2e-ac-$SFX" --fallback-model "e2e-ac-$SFX" >/dev/null
if warm bw "$KEY" chat; then
	t_ok "chat settings warmed into every chat child"
else
	t_fail "chat settings warmed into every chat child" \
	    "missed: $(missing bw- 200 3 chat | tr '\n' ' ')"
fi
t_check "bulwarkctl budget set --daily-micros 1: exit 0" \
    t_ctl budget set --org "$ORG" --daily-micros 1 --primary-model \
    "e2e-ac-$SFX" --fallback-model "e2e-ac-$SFX"
COVER=bw-
read -r total bad missed < <(refused br "$KEY" 402 chat)
COVER=
t_eq "after the budget change: every chat turn 402 on every child (not 402: $bad of $total, missed: $missed)" \
    "0 0" "$bad $missed"

# --- the generation gone from Redis: nothing stale is served -------------------
new_org flush
if warm fw "$KEY" whoami health chat; then
	t_ok "a third key warmed into every child"
else
	t_fail "a third key warmed into every child" \
	    "missed: $(missing fw- 200 3 whoami health chat | tr '\n' ' ')"
fi
t_sql "UPDATE api_keys SET revoked_at = now() WHERE org_id = '$ORG'" >/dev/null
redis-cli -u "$REDIS_URL" --no-auth-warning del 'bw:{rl}:cfg:gen' >/dev/null
COVER=fw-
read -r total bad missed < <(refused fr "$KEY" 401 whoami health chat)
COVER=
t_eq "generation deleted, key revoked without a bump: 401 on every child (not 401: $bad of $total, missed: $missed)" \
    "0 0" "$bad $missed"

t_done
