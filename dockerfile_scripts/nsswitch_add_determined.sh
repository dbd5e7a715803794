#!/usr/bin/env bash
# Adds the "determined" NSS service to the passwd, group and shadow lines of
# an nsswitch.conf: right after "files" (or "compat"), else at the end of the
# line; a missing line becomes "DB: files determined". Idempotent: a line that
# already lists "determined" is left as it is.
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
        line = $1
        added = 0
        for (i = 2; i <= NF; i++) {
            line = line " " $i
            if (!added && ($i == "files" || $i == "compat")) { line = line " determined"; added = 1 }
        }
        if (!added) line = line " determined"
        print line
    }
    END {
        split("passwd group shadow", order, " ")
        for (k = 1; k <= 3; k++) if (!(order[k] in seen)) print order[k] ": files determined"
    }
' "${conf}" >"${tmp}"
cat "${tmp}" >"${conf}"
rm -f "${tmp}"
