#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks of deploy/prometheus/bulwark-rules.yml that promtool does not make
(run by tests/lint/alerts.sh; prints "ok - " / "not ok - " lines).

  check_rules.py shape TOP      every rule is an alert with for:, a severity
                                label, summary, description and a runbook_url
                                naming a file of docs/runbooks/ in the tree
  check_rules.py coverage TOP   every alert has a test on which it fires and
                                one on which it stays quiet
                                (tests/alerts/*.yml), and the tests name no
                                alert that does not exist
  check_rules.py mutants TOP DIR
                                writes, for every alert, a rules file where it
                                always fires, next to a test file of only its
                                quiet cases, and one where it never fires,
                                next to its firing cases, as
                                DIR/<alert>.<always|never>/
  check_rules.py names TOP      the metric names the rules read, one a line
"""
import glob
import os
import re
import sys

import yaml

RULES = "deploy/prometheus/bulwark-rules.yml"
SEVERITIES = ("critical", "warning", "info")
RUNBOOK_RE = re.compile(r"^docs/runbooks/[a-z0-9-]+\.md$")
# A metric name in an expression: not a label name (followed by = or !=
# or =~), not a function, keyword or duration.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "delta",
    "without", "by", "and", "or", "unless", "on", "ignoring", "vector",
    "offset", "bool", "group_left", "group_right", "absent", "changes",
}


def ok(name):
    print("ok - " + name)


def fail(name, why):
    print("not ok - %s: %s" % (name, why))


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def alerts(top):
    out = []
    for g in load(os.path.join(top, RULES))["groups"]:
        for r in g["rules"]:
            out.append(r)
    return out


def tests(top):
    out = []
    for path in sorted(glob.glob(os.path.join(top, "tests/alerts/*.yml"))):
        for t in load(path).get("tests", []):
            out.append((path, t))
    return out


def shape(top):
    bad = 0
    for r in alerts(top):
        name = r.get("alert") or r.get("record") or "?"
        why = []
        if "alert" not in r:
            why.append("not an alert")
        if "for" not in r:
            why.append("no for:")
        if r.get("labels", {}).get("severity") not in SEVERITIES:
            why.append("severity not one of " + "|".join(SEVERITIES))
        a = r.get("annotations", {})
        for k in ("summary", "description", "runbook_url"):
            if not a.get(k):
                why.append("no " + k)
        u = a.get("runbook_url", "")
        if u and not RUNBOOK_RE.match(u):
            why.append("runbook_url %s is not docs/runbooks/NAME.md" % u)
        elif u and not os.path.isfile(os.path.join(top, u)):
            why.append("runbook_url %s: no such file" % u)
        if why:
            fail("rules: " + name, "; ".join(why))
            bad += 1
        else:
            ok("rules: %s has for:, severity, summary, description and "
               "runbook %s" % (name, u))
    return bad


def coverage(top):
    names = {r["alert"] for r in alerts(top) if "alert" in r}
    fires, quiet, unknown = set(), set(), set()
    for _, t in tests(top):
        for c in t.get("alert_rule_test", []):
            n = c["alertname"]
            if n not in names:
                unknown.add(n)
            (fires if c.get("exp_alerts") else quiet).add(n)
    bad = 0
    for n in sorted(names):
        miss = []
        if n not in fires:
            miss.append("no test on which it fires")
        if n not in quiet:
            miss.append("no test on which it stays quiet")
        if miss:
            fail("tests: " + n, "; ".join(miss))
            bad += 1
        else:
            ok("tests: %s fires on a sample series and stays quiet on "
               "another" % n)
    for n in sorted(unknown):
        fail("tests: " + n, "the tests name an alert the rules do not have")
        bad += 1
    return bad


def mutants(top, outdir):
    doc = load(os.path.join(top, RULES))
    all_tests = tests(top)
    for g in doc["groups"]:
        for r in g["rules"]:
            if "alert" not in r:
                continue
            n = r["alert"]
            for kind, expr in (("always", "vector(1)"),
                               ("never", "vector(1) < 0")):
                # always: only its quiet cases, which must catch it;
                # never: only its firing cases.
                mine = []
                for _, t in all_tests:
                    cs = [c for c in t.get("alert_rule_test", [])
                          if c["alertname"] == n and
                          bool(c.get("exp_alerts")) == (kind == "never")]
                    if cs:
                        mine.append(dict(t, alert_rule_test=cs))
                d = os.path.join(outdir, "%s.%s" % (n, kind))
                os.makedirs(d)
                old = r["expr"]
                r["expr"] = expr
                with open(os.path.join(d, "rules.yml"), "w") as f:
                    yaml.safe_dump(doc, f, sort_keys=False)
                r["expr"] = old
                with open(os.path.join(d, "test.yml"), "w") as f:
                    yaml.safe_dump({"rule_files": ["rules.yml"],
                                    "evaluation_interval": "1m",
                                    "tests": mine}, f, sort_keys=False)
    return 0


def names(top):
    seen = set()
    for r in alerts(top):
        expr = re.sub(r"\{[^}]*\}", "", r["expr"])  # label matchers
        expr = re.sub(r"\[[^\]]*\]", "", expr)      # ranges
        expr = re.sub(r"(without|by|on|ignoring)\s*\([^)]*\)", "", expr)
        for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
            if w not in PROMQL_WORDS and w not in seen:
                seen.add(w)
                print(w)
    return 0


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    cmd, top = sys.argv[1], sys.argv[2]
    if cmd == "shape":
        return 1 if shape(top) else 0
    if cmd == "coverage":
        return 1 if coverage(top) else 0
    if cmd == "mutants" and len(sys.argv) == 4:
        return mutants(top, sys.argv[3])
    if cmd == "names":
        return names(top)
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
