#!/usr/bin/env bash
# Installs additional-requirements.txt: the libraries Determined's examples
# and users' code expect next to the frameworks.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

log "installing the additional requirements"
pip_install -r "${SCRIPTS}/additional-requirements.txt"
