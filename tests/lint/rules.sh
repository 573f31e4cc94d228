#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The lint tier's own test: dev/lint's layering, strto and signing rules
# must fail on a deliberate violation and pass on the same tree without it.
# Each case lints a copy of lib/, fcgi/, workers/ and tools/ (no services
# needed) with one line added.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd -P)
# shellcheck source=../lib/assert.sh
. "$top/tests/lib/assert.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bw-lint.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# fresh: a copy of the C tree at $tmp/t.
fresh() {
	rm -rf "$tmp/t"
	mkdir -p "$tmp/t"
	cp -r "$top/lib" "$top/fcgi" "$top/workers" "$top/tools" "$tmp/t/"
}

# lint CHECK: dev/lint --only CHECK on the copy; its output in $tmp/out.
lint() {
	"$top/dev/lint" --root "$tmp/t" --only "$1" >"$tmp/out" 2>&1
}

# expect_fail NAME CHECK FILE LINE PATTERN: appending LINE to FILE makes
# CHECK fail with PATTERN in its output.
expect_fail() {
	local name=$1 chk=$2 file=$3 line=$4 pat=$5 rc=0
	fresh
	printf '%s\n' "$line" >>"$tmp/t/$file"
	lint "$chk" || rc=$?
	if [ "$rc" -ne 0 ] && grep -q "not ok - lint: $chk" "$tmp/out" &&
	    grep -Eq -- "$pat" "$tmp/out"; then
		t_ok "$name"
	else
		t_fail "$name" "exit $rc: $(head -c 400 "$tmp/out")"
	fi
}

fresh
rc=0
lint includes || rc=$?
t_eq "includes: the tree as it is passes" 0 "$rc"
rc=0
lint strto || rc=$?
t_eq "strto: the tree as it is passes" 0 "$rc"

expect_fail "includes: core including a domain header fails" includes \
    lib/core/buf.c '#include "chat/llm.h"' \
    'lib/core/buf.c:[0-9]+: lib/core may not include "chat/llm.h"'
expect_fail "includes: core including a platform header fails" includes \
    lib/core/log.c '#include "platform/jobq.h"' 'may not include'
expect_fail "includes: platform including a domain header fails" includes \
    lib/platform/jobq.h '#include "money/credit.h"' 'may not include'
expect_fail "includes: money including chat (undeclared) fails" includes \
    lib/money/credit.c '#include "chat/budget.h"' \
    'lib/money may not include "chat/budget.h"'
expect_fail "includes: an include without its folder fails" includes \
    lib/chat/sem.c '#include "db.h"' 'without its folder'

# A domain may include platform and core.
fresh
printf '#include "platform/jobq.h"\n#include "core/db.h"\n' \
    >>"$tmp/t/lib/evidence/ledger.c"
rc=0
lint includes || rc=$?
t_eq "includes: a domain including platform and core passes" 0 "$rc"

# A new folder of lib/ must be declared.
fresh
mkdir -p "$tmp/t/lib/toys"
printf '#include "core/db.h"\n' >"$tmp/t/lib/toys/x.c"
rc=0
lint includes || rc=$?
if [ "$rc" -ne 0 ] && grep -q 'lib/toys is not a declared layer' "$tmp/out"
then
	t_ok "includes: an undeclared lib/ folder fails"
else
	t_fail "includes: an undeclared lib/ folder fails" "$(cat "$tmp/out")"
fi

expect_fail "strto: strtol with a NULL end fails" strto \
    lib/core/buf.c 'static long f(const char *s) { return strtol(s, NULL, 10); }' \
    'lib/core/buf.c:[0-9]+: strto with a NULL end'
expect_fail "strto: a call split over lines is seen" strto \
    lib/chat/conv.c "$(printf 'static double g(const char *s)\n{\n\treturn strtod(s,\n\t    NULL);\n}')" \
    'lib/chat/conv.c:[0-9]+: strto with a NULL end'

rc=0
lint signing || rc=$?
t_eq "signing: the tree as it is passes" 0 "$rc"
expect_fail "signing: fcgi/ naming ledger_key_file fails" signing \
    fcgi/h_public_ledger_keys.c \
    'static const char *k(const struct config *c) { return c->ledger_key_file; }' \
    'fcgi/h_public_ledger_keys.c:[0-9]+:.*ledger_key_file'
expect_fail "signing: fcgi/ calling ledger_key_load fails" signing \
    fcgi/main.c 'static void s(uint8_t *x) { (void)ledger_key_load("k", x); }' \
    'fcgi/main.c:[0-9]+:.*ledger_key_load'

t_done
