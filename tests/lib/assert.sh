# SPDX-License-Identifier: MIT
# Assertions for the integration, e2e and chaos tiers. Each check prints
# "ok - NAME" or "not ok - NAME: WHY"; t_done exits non-zero if any failed.
# The runner (tests/lib/run-tier) counts those lines.

T_FAILED=0
T_PASSED=0

t_ok() {
	T_PASSED=$((T_PASSED + 1))
	printf 'ok - %s\n' "$1"
}

t_fail() {
	T_FAILED=$((T_FAILED + 1))
	printf 'not ok - %s: %s\n' "$1" "${2:-failed}"
}

# t_check NAME CMD...: passes when CMD exits 0.
t_check() {
	local name=$1
	shift
	if "$@"; then t_ok "$name"; else t_fail "$name" "command failed: $*"; fi
}

# t_eq NAME EXPECTED ACTUAL
t_eq() {
	if [ "$2" = "$3" ]; then
		t_ok "$1"
	else
		t_fail "$1" "expected '$2', got '$3'"
	fi
}

# t_le NAME LIMIT VALUE: integer VALUE <= LIMIT.
t_le() {
	if [ "$3" -le "$2" ] 2>/dev/null; then
		t_ok "$1"
	else
		t_fail "$1" "expected <= $2, got '$3'"
	fi
}

# t_ge NAME FLOOR VALUE: integer VALUE >= FLOOR.
t_ge() {
	if [ "$3" -ge "$2" ] 2>/dev/null; then
		t_ok "$1"
	else
		t_fail "$1" "expected >= $2, got '$3'"
	fi
}

# t_match NAME REGEX TEXT: TEXT matches the extended regex.
t_match() {
	if printf '%s' "$3" | grep -Eq -- "$2"; then
		t_ok "$1"
	else
		t_fail "$1" "'$(printf '%s' "$3" | head -c 300)' does not match /$2/"
	fi
}

# psql against the stack's database, unaligned, tuples only.
t_sql() {
	psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAtX -c "$1"
}

t_done() {
	[ "$T_FAILED" -eq 0 ]
	exit $?
}
