#!/usr/bin/env bash
# Adds the "determined" NSS service to the passwd, group and shadow lines of
# an nsswitch.conf, first, as the 0.22.1 images had it: on OpenShift the
# running UID is appended to /etc/passwd, and the entry Determined injects
# (/run/determined/etc) must win over it. A missing line becomes
# "DB: determined files". Idempotent: a line that already lists
# "determined" is left as it is.
# Usage: nsswitch_add_determined.sh [/etc/nsswitch.conf]
set -euo pipefail

conf="${1:-/etc/nsswitch.conf}"
if [[ ! -e "${conf}" ]]; then
    : >"${conf}"
fi

tmp="$(mktemp)"
awk '
    BEGIN { want["passwd"] = 1; want["group"] = 1; want["shadow"] = 1 }
    {
        db = $1
        sub(/:$/, "", db)
        if (!(db in want) || $1 !~ /:$/) { print; next }
        seen[db] = 1
        for (i = 2; i <= NF; i++) if ($i == "determined") { print; next }
        line = $1 " determined"
        for (i = 2; i <= NF; i++) line = line " " $i
        print line
    }
    END {
        split("passwd group shadow", order, " ")
        for (k = 1; k <= 3; k++) if (!(order[k] in seen)) print order[k] ": determined files"
    }
' "${conf}" >"${tmp}"
cat "${tmp}" >"${conf}"
rm -f "${tmp}"
