#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The alert rules (deploy/prometheus/bulwark-rules.yml, issue 12): promtool
# check rules accepts them; every alert has for:, a severity, summary,
# description and a runbook in docs/runbooks/; promtool test rules passes
# tests/alerts/*.yml, where each alert fires on a sample series and stays
# quiet on another; and the tests catch a broken alert: for each alert, a
# copy of the rules where its expression always fires, and one where it
# never fires, must each fail that alert's tests. No services.
# Needs promtool (Debian package prometheus) and python3-yaml.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd -P)
# shellcheck source=../lib/assert.sh
. "$top/tests/lib/assert.sh"

rules=$top/deploy/prometheus/bulwark-rules.yml
chk=$top/tests/alerts/check_rules.py
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bw-alerts.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! command -v promtool >/dev/null; then
	t_fail "promtool is installed (Debian package prometheus)"
	t_done
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
	t_fail "python3-yaml is installed (Debian package python3-yaml)"
	t_done
fi

if promtool check rules "$rules" >"$tmp/check" 2>&1; then
	t_ok "promtool check rules: $(grep -o '[0-9]* rules found' "$tmp/check")"
else
	t_fail "promtool check rules" "$(tail -n 20 "$tmp/check")"
fi

# Their "not ok" lines are counted by the runner; the exit status here.
python3 "$chk" shape "$top" || T_FAILED=$((T_FAILED + 1))
python3 "$chk" coverage "$top" || T_FAILED=$((T_FAILED + 1))

for f in "$top"/tests/alerts/*.yml; do
	n=${f#"$top"/}
	if promtool test rules "$f" >"$tmp/test" 2>&1; then
		t_ok "promtool test rules $n"
	else
		t_fail "promtool test rules $n" "$(tail -n 40 "$tmp/test")"
	fi
done

# Mutants: each must make promtool test rules fail.
if python3 "$chk" mutants "$top" "$tmp/m" >"$tmp/mutants" 2>&1; then
	for d in "$tmp"/m/*; do
		m=${d##*/}
		if promtool test rules "$d/test.yml" >"$d/out" 2>&1; then
			t_fail "tests catch ${m%.*} when it ${m##*.} fires" \
			    "promtool test rules passed"
		else
			t_ok "tests catch ${m%.*} when it ${m##*.} fires"
		fi
	done
else
	t_fail "mutants written" "$(cat "$tmp/mutants")"
fi

t_done
