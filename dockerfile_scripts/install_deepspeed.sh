#!/usr/bin/env bash
# Installs DeepSpeed from DEEPSPEED_PIP (a pip argument list, e.g.
# "deepspeed==0.8.3" or "git+https://...@branch"); empty means skip.
# The commonly used ops are compiled ahead of time for TORCH_CUDA_ARCH_LIST
# (the rest stay JIT-compiled on first use).
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
export DS_BUILD_CPU_ADAM=1 DS_BUILD_FUSED_ADAM=1 DS_BUILD_FUSED_LAMB=1 DS_BUILD_UTILS=1
pip_install "ninja"
log "installing DeepSpeed: ${DEEPSPEED_PIP}"
pip_spec_install "${DEEPSPEED_PIP}"
ds_report
