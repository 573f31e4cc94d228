# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# The prologue of tests/cluster/pg_failover.sh and host_kill.sh, after
# tests/lib/common.sh:
#
#	. "$BW_TOP/tests/lib/cluster.sh"
#	tc_org cluster-pg member whsec_cluster cluster-grant
#
# Needs the tier's environment (BW_CONFIG DATABASE_URL BW_CLUSTER_RUN),
# loads dev/lib/cluster.sh and the cluster's variables (cluster_load: CRUN,
# the ports, cluster_pg_primary, cluster_kill_host, ...) and sets U1 and U2
# (the two hosts' https URLs) and SFX (a suffix unique to this run).
t_need BW_CONFIG DATABASE_URL BW_CLUSTER_RUN
# shellcheck source-path=SCRIPTDIR source=../../dev/lib/cluster.sh
. "$BW_TOP/dev/lib/cluster.sh"
cluster_load "$BW_CLUSTER_RUN"

SFX="$$$RANDOM"
U1=$(. "$CRUN/h1/env" && echo "$BULWARK_URL")
U2=$(. "$CRUN/h2/env" && echo "$BULWARK_URL")

# tc_org NAME ROLE SECRET ANCHOR: a new org NAME-$SFX (ORG) with an API key
# of ROLE (KEY), the Stripe webhook secret SECRET$SFX (SEC) and 100000
# credits for user u$SFX (granted under anchor ANCHOR-$SFX). Ends the
# script with a failed check when the org or the key was not made.
tc_org() {
	ORG=$(t_ctl org create --name "$1-$SFX" | jq -r .id)
	KEY=$(t_ctl key create --org "$ORG" --role "$2" | jq -r .key)
	SEC="$3$SFX"
	t_ctl webhook-secret set --org "$ORG" --provider stripe \
	    --secret "$SEC" >/dev/null
	t_ctl credits grant --org "$ORG" --user "u$SFX" --amount 100000 \
	    --anchor "$4-$SFX" >/dev/null
	if [ -z "$ORG" ] || [ "$ORG" = null ] || [ -z "$KEY" ] ||
	    [ "$KEY" = null ]; then
		t_fail "cluster: set-up" "no org or key"
		t_done
	fi
}
