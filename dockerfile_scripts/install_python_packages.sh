#!/usr/bin/env bash
# Installs Determined's runtime dependencies and Jupyter, and writes Jupyter's
# configuration under /run/determined/jupyter (the Dockerfiles point
# JUPYTER_CONFIG_DIR, JUPYTER_DATA_DIR and JUPYTER_RUNTIME_DIR there).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

here="$(dirname "${BASH_SOURCE[0]}")"
log "installing Determined's runtime dependencies and Jupyter"
pip_install -r "${here}/determined-requirements.txt"

root=/run/determined/jupyter
mkdir -p "${root}/config" "${root}/data" "${root}/runtime"
cat >"${root}/config/jupyter_notebook_config.py" <<'PY'
# Jupyter as Determined runs it inside a task container: the master proxies
# to it, so it listens on all interfaces, never opens a browser, and may run
# as root. Authentication is done by the Determined proxy.
c = get_config()  # noqa: F821
for app in (c.NotebookApp, c.ServerApp):
    app.ip = "0.0.0.0"
    app.open_browser = False
    app.allow_root = True
    app.terminado_settings = {"shell_command": ["/bin/bash"]}
PY
cp "${root}/config/jupyter_notebook_config.py" "${root}/config/jupyter_server_config.py"
chmod -R a+rwX "${root}"
