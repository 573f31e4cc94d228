#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The alert rules against a live /metrics (through nginx, loopback): every
# metric the rules of deploy/prometheus/bulwark-rules.yml read exists in
# the scrape, except the campaign series listed in
# tests/alerts/not-yet-exported.txt, which must not exist yet (once the
# campaign code exports one, remove it from that list). The two gauges the
# rules added: bulwark_llm_global_cap is the config's llm_global_cap, and
# bulwark_jobs_oldest_runnable_seconds follows the oldest runnable job (a
# job 2 h old makes it >= 7200 s). The promtool unit tests of the rules
# are in the lint tier (tests/lint/alerts.sh).
# Needs curl, promtool (Debian package prometheus), python3-yaml.
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "${BW_TOP:?}/tests/lib/common.sh"
t_need BULWARK_URL BW_CONFIG

U=$BULWARK_URL
M=$TMP/metrics
Q="t-alerts-$$$RANDOM"
LATER=$BW_TOP/tests/alerts/not-yet-exported.txt

cleanup() { t_sql "DELETE FROM jobs WHERE queue = '$Q'" >/dev/null 2>&1; }
t_on_exit cleanup

# scrape: GET /metrics from loopback into $M; its status in $ST.
scrape() {
	ST=$(curl -sk --max-time 20 --interface 127.0.0.1 -o "$M" \
	    -w '%{http_code}' "$U/metrics")
}

# value NAME: the value of the unlabelled sample NAME in $M.
value() { awk -v n="$1" '$1 == n { print $2 }' "$M"; }

# exported NAME: $M has a family NAME (a TYPE line or a sample).
exported() {
	grep -Eq "^# TYPE $1 |^$1(\{| )" "$M"
}

scrape
t_eq "GET /metrics from loopback: 200" 200 "$ST"
if promtool check metrics <"$M" >"$TMP/promtool.out" 2>&1; then
	t_ok "promtool check metrics accepts /metrics"
else
	t_fail "promtool check metrics accepts /metrics" "$(head -c 400 "$TMP/promtool.out")"
fi
echo "# families in /metrics: $(awk '$1 == "#" && $2 == "TYPE" { printf "%s ", $3 }' "$M")"

# --- every metric name the rules read ------------------------------------
if ! names=$(python3 "$BW_TOP/tests/alerts/check_rules.py" names "$BW_TOP"); then
	t_fail "the rules' metric names" "check_rules.py names failed"
	t_done
fi
later=$(grep -Ev '^[[:space:]]*(#|$)' "$LATER" | awk '{ print $1 }')
n=0
for name in $names; do
	[ "$name" = up ] && continue # made by Prometheus, not exported
	n=$((n + 1))
	if printf '%s\n' "$later" | grep -qx -- "$name"; then
		if exported "$name"; then
			t_fail "$name is listed as not yet exported" \
			    "it is in /metrics now: remove it from tests/alerts/not-yet-exported.txt"
		else
			t_ok "$name: not exported yet (tests/alerts/not-yet-exported.txt)"
		fi
	elif exported "$name"; then
		t_ok "$name, read by the alert rules, is in /metrics"
	else
		t_fail "$name, read by the alert rules, is in /metrics" \
		    "no such family in the scrape"
	fi
done
t_ge "the rules read at least 10 metric names" 10 "$n"
for name in $later; do
	printf '%s\n' "$names" | grep -qx -- "$name" ||
	    t_fail "$name in not-yet-exported.txt" "no rule reads it"
done

# --- the gauges added for the rules --------------------------------------
cap=$(awk -F= '$1 ~ /^[ \t]*llm_global_cap[ \t]*$/ { gsub(/[ \t]/, "", $2); print $2 }' \
    "$BW_CONFIG")
t_eq "bulwark_llm_global_cap is the config's llm_global_cap" "${cap:-15}" \
    "$(value bulwark_llm_global_cap)"

old0=$(value bulwark_jobs_oldest_runnable_seconds)
t_match "bulwark_jobs_oldest_runnable_seconds is a number" '^[0-9]+(\.[0-9]+)?$' \
    "$old0"
t_sql "INSERT INTO jobs (queue, job_key, run_at) VALUES ('$Q', 'old',
    now() - interval '2 hours')" >/dev/null
scrape
old1=$(value bulwark_jobs_oldest_runnable_seconds)
t_check "a runnable job 2 h old: bulwark_jobs_oldest_runnable_seconds >= 7200 ($old1)" \
    awk -v v="$old1" 'BEGIN { exit !(v + 0 >= 7200) }'
t_sql "UPDATE jobs SET run_at = now() + interval '1 hour' WHERE queue = '$Q'" \
    >/dev/null
scrape
old2=$(value bulwark_jobs_oldest_runnable_seconds)
t_check "the same job not due yet: not counted ($old2 < 7200)" \
    awk -v v="$old2" 'BEGIN { exit !(v != "" && v + 0 < 7200) }'

t_done
