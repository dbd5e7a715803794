#!/usr/bin/env bash
# Installs DeepSpeed from DEEPSPEED_PIP (a pip argument list, e.g.
# "deepspeed==0.8.3" or "git+https://...@branch"); empty means skip.
# All of DeepSpeed's ops are compiled ahead of time (DS_BUILD_OPS=1) for
# TORCH_CUDA_ARCH_LIST, with what they need: libaio (async I/O), triton 1.0.0
# (sparse attention) and pdsh (the multi-node launcher). DeepSpeed is also
# installed under deepspeed-constraints.txt (pydantic<2).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -z "${DEEPSPEED_PIP:-}" ]]; then
    log "DEEPSPEED_PIP is empty: no DeepSpeed"
    exit 0
fi
if [[ -n "${TORCH_CUDA_ARCH_LIST:-}" ]]; then
    export TORCH_CUDA_ARCH_LIST
fi
apt_install pdsh libaio-dev
pip_install triton==1.0.0
log "installing DeepSpeed with all ops prebuilt: ${DEEPSPEED_PIP}"
DS_BUILD_OPS=1 pip_spec_install "--constraint ${SCRIPTS}/deepspeed-constraints.txt --no-binary deepspeed ${DEEPSPEED_PIP}"
python -m deepspeed.env_report
