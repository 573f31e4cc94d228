#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Migrations against the real PostgreSQL (lib/platform/migrate.c through
# `bulwarkctl migrate`): concurrent runs apply each file exactly once, the
# recorded SHA-256 matches the file, a changed or failing file is refused and
# rolled back, and the advisory lock is waited for and always released.
# Works in a scratch database of its own, dropped at the end. Needs psql and
# python3.

# shellcheck disable=SC2317 # trap handlers are called indirectly
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "${BW_TOP:?}/tests/lib/common.sh"
t_need DATABASE_URL

CTL=${BW_BUILD:+$BW_BUILD/}bulwarkctl
LOCK_NS=$((0x42570001))	# DB_LOCK_MIGRATE in lib/core/db.h
SCRATCH=bw_it_migrate_$$_$RANDOM
HOLDER_PID=

# DATABASE_URL with its database replaced by $1 (URL or keyword form).
db_url() {
	python3 - "$DATABASE_URL" "$1" <<'EOF'
import sys, urllib.parse as u
url, db = sys.argv[1], sys.argv[2]
if "://" in url:
    p = u.urlsplit(url)
    print(u.urlunsplit((p.scheme, p.netloc, "/" + db, p.query, p.fragment)))
else:
    print(url + " dbname=" + db)
EOF
}

cleanup() {
	if [ -n "$HOLDER_PID" ]; then
		kill "$HOLDER_PID" 2>/dev/null
		wait "$HOLDER_PID" 2>/dev/null
	fi
	t_sql "DROP DATABASE IF EXISTS $SCRATCH WITH (FORCE)" >/dev/null 2>&1
}
t_on_exit cleanup

SURL=$(db_url "$SCRATCH")
ssql() {
	psql "$SURL" -v ON_ERROR_STOP=1 -qAtX -c "$1"
}
# migrate DIR OUT: one bulwarkctl run against the scratch database.
migrate() {
	BULWARK_DATABASE_URL=$SURL BULWARK_SQL_DIR=$1 "$CTL" \
		${BW_CONFIG:+-c "$BW_CONFIG"} migrate >"$2" 2>"$2.err"
}
# Names of migration files in a directory, as lib/platform/migrate.c matches them.
sql_files() {
	find "$1" -maxdepth 1 -type f -printf '%f\n' |
		grep -E '^[0-9]{4}_[a-z0-9_]+\.sql$' | sort
}
applied_count() {
	grep -oE '[0-9]{4}_[a-z0-9_]+\.sql' "$1" | wc -l
}

if ! t_sql "CREATE DATABASE $SCRATCH" >/dev/null; then
	t_fail "scratch database" "cannot CREATE DATABASE"
	t_done
fi

SQL_DIR=$BW_TOP/sql
NFILES=$(sql_files "$SQL_DIR" | wc -l)
t_ge "there are migrations" 1 "$NFILES"

# Three hosts migrating at once: one applies, the others wait, then find
# nothing left to do.
pids=()
for i in 1 2 3; do
	migrate "$SQL_DIR" "$BW_TMP/m$i.out" &
	pids+=($!)
done
rcs=0
for p in "${pids[@]}"; do
	wait "$p" || rcs=$((rcs + 1))
done
t_eq "concurrent migrate runs all succeed" 0 "$rcs"
t_eq "each migration recorded once" "$NFILES" \
	"$(ssql 'SELECT count(*) FROM schema_migrations')"
total=0
for i in 1 2 3; do
	total=$((total + $(applied_count "$BW_TMP/m$i.out")))
done
t_eq "each migration applied by exactly one run" "$NFILES" "$total"

bad_sha=0
while read -r f; do
	want=$(sha256sum "$SQL_DIR/$f" | cut -d' ' -f1)
	got=$(ssql "SELECT sha256 FROM schema_migrations WHERE name = '$f'")
	[ "$want" = "$got" ] || bad_sha=$((bad_sha + 1))
done < <(sql_files "$SQL_DIR")
t_eq "recorded sha256 matches the file" 0 "$bad_sha"

migrate "$SQL_DIR" "$BW_TMP/again.out"
t_eq "rerun succeeds" 0 $?
t_eq "rerun applies nothing" 0 "$(applied_count "$BW_TMP/again.out")"

# A run waits for the lock rather than failing or skipping it.
psql "$SURL" -qAtX -c "SELECT pg_advisory_lock($LOCK_NS, 0)" \
	-c "SELECT pg_sleep(1.5)" >/dev/null 2>&1 &
HOLDER_PID=$!
sleep 0.5
t0=$(date +%s%N)
migrate "$SQL_DIR" "$BW_TMP/wait.out"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
wait "$HOLDER_PID" 2>/dev/null
HOLDER_PID=
t_eq "migrate behind a held lock succeeds" 0 "$rc"
t_ge "migrate waited for the lock (ms)" 700 "$ms"

# A failing file: nothing of it stays, it is not recorded, the run fails.
WORK=$BW_TMP/sql
mkdir -p "$WORK"
cp "$SQL_DIR"/*.sql "$WORK"/
printf 'CREATE TABLE it_broken (a int);\nSELECT no_such_function();\n' \
	>"$WORK/9998_it_broken.sql"
migrate "$WORK" "$BW_TMP/broken.out"
t_check "failing migration fails the run" test $? -ne 0
t_eq "failing migration not recorded" 0 \
	"$(ssql "SELECT count(*) FROM schema_migrations WHERE name = '9998_it_broken.sql'")"
t_eq "failing migration rolled back" t \
	"$(ssql "SELECT to_regclass('it_broken') IS NULL")"
rm -f "$WORK/9998_it_broken.sql"

# A recorded file whose text changed is refused, naming the file.
first=$(sql_files "$WORK" | head -n 1)
printf -- '-- edited after it was applied\n' >>"$WORK/$first"
migrate "$WORK" "$BW_TMP/changed.out"
t_check "changed migration refused" test $? -ne 0
t_match "refusal names the file" "$first" "$(cat "$BW_TMP/changed.out.err")"

# Every path above released the session lock.
t_eq "migrate lock released" t \
	"$(ssql "SELECT pg_try_advisory_lock($LOCK_NS, 0)")"

# A database that refuses the command's first connection and listens only
# 0.4 s later (a server restarting, or one slow to accept under a burst of
# connections): bulwarkctl tries again (ctl_connect(), 3 attempts, 250 and
# 500 ms apart) instead of failing. The forwarder's clock starts at the
# first attempt itself (it accepts it, resets it, closes its listener for
# 0.4 s), not at bulwarkctl's start, which a busy machine stretches.
LATE=$(python3 - "$SURL" <<'EOF'
import socket, sys, urllib.parse as u
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
p = u.urlsplit(sys.argv[1])
print(port, p.port or 5432,
      u.urlunsplit((p.scheme, p.netloc.rsplit(":", 1)[0] + ":%d" % port,
                    p.path, p.query, p.fragment)))
EOF
)
read -r LATE_PORT PG_REAL_PORT LATE_URL <<<"$LATE"
READY=$BW_TMP/late.ready
mkfifo "$READY"
python3 - "$LATE_PORT" "$PG_REAL_PORT" "$READY" <<'EOF' &
# Listens, says "ready"; resets the first connection and listens again 0.4 s
# later; then forwards each connection to PostgreSQL.
import socket, struct, sys, threading, time
late, real = int(sys.argv[1]), int(sys.argv[2])

def listener():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", late))
    ls.listen(8)
    ls.settimeout(20)
    return ls

ls = listener()
with open(sys.argv[3], "w") as r:
    r.write("ready\n")
try:
    c, _ = ls.accept()
except OSError:
    sys.exit(0)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.close()
ls.close()
time.sleep(0.4)
ls = listener()
def pipe(a, b):
    try:
        while (d := a.recv(65536)):
            b.sendall(d)
    except OSError:
        pass
    finally:
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
try:
    while True:
        c, _ = ls.accept()
        u = socket.create_connection(("127.0.0.1", real))
        threading.Thread(target=pipe, args=(c, u), daemon=True).start()
        threading.Thread(target=pipe, args=(u, c), daemon=True).start()
except OSError:
    pass
EOF
HOLDER_PID=$!
read -r _ <"$READY"
BULWARK_DATABASE_URL=$LATE_URL BULWARK_SQL_DIR=$SQL_DIR "$CTL" \
	${BW_CONFIG:+-c "$BW_CONFIG"} migrate >"$BW_TMP/late.out" \
	2>"$BW_TMP/late.out.err"
t_eq "bulwarkctl waits out a database that refuses it, then listens 0.4 s late" \
	0 "$?"
t_match "... after a logged first refusal" "db connect failed" \
	"$(cat "$BW_TMP/late.out.err")"
kill "$HOLDER_PID" 2>/dev/null
wait "$HOLDER_PID" 2>/dev/null
HOLDER_PID=

t_done
