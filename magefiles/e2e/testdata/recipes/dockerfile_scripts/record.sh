#!/bin/sh
# record.sh STAGE: what the e2e stand-in recipes run instead of installing
# anything. It records the environment the RUN step received (a stage's ARGs
# reach RUN steps as environment variables) and the machine it ran on, so the
# e2e suite can read back from the pushed image which build arguments each
# image was built with and whether the arm64 image really ran under arm64.
#
# Test hooks (files a scenario adds to its own copy of the recipes):
#   hooks/fail-if  lines NAME=value: exit 1 when the environment has one of them
#   hooks/slow-if  lines NAME=value: sleep (for the interrupt scenario)
set -eu
stage=$1
dir=/etc/determined-build/$stage
hooks=$(dirname "$0")/hooks
mkdir -p "$dir"
env | sort > "$dir/env"
uname -m > "$dir/arch"
# The scenario's nonce: an input of every stage, so no two scenarios share
# images by their inputs.
cat "$(dirname "$0")/e2e-scenario" > "$dir/scenario" 2>/dev/null || true
echo "e2e-record $stage arch=$(uname -m)"
if [ -f "$hooks/slow-if" ] && grep -qxF -f "$hooks/slow-if" "$dir/env"; then
    echo "e2e-slow-step-started $stage"
    sleep 600
fi
if [ -f "$hooks/fail-if" ] && grep -qxF -f "$hooks/fail-if" "$dir/env"; then
    echo "e2e-failing-on-purpose $stage"
    exit 1
fi
