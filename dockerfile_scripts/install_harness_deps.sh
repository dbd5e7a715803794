#!/usr/bin/env bash
# Installs what every image's Python has for Determined: the dependencies of
# Determined's harness (the `determined` package is installed and then
# uninstalled, so its dependencies stay and the harness matching the
# cluster can be installed at runtime, also in non-root containers), and
# JupyterLab (held at 3.5: 3.6 needs Rust to build y-py).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

log "installing the harness dependencies (determined, then uninstalled)"
pip_install determined
python -m pip uninstall -y determined

log "installing JupyterLab"
pip_install "jupyterlab~=3.5.0" "jupyter-archive~=3.2" "jupyterlab-server~=2.10,<=2.16.5"
