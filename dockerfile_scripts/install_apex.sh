#!/usr/bin/env bash
# Builds NVIDIA apex with its C++ and CUDA extensions from APEX_GIT
# ("https://host/repo.git@COMMIT"), for TORCH_CUDA_ARCH_LIST.
# Empty APEX_GIT (or no PyTorch) means skip.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -z "${APEX_GIT:-}" ]]; then
    log "APEX_GIT is empty: no apex"
    exit 0
fi
if ! python -c 'import torch' 2>/dev/null; then
    echo "APEX_GIT is set but PyTorch is not installed (TORCH_PIP)" >&2
    exit 1
fi
if [[ -n "${TORCH_CUDA_ARCH_LIST:-}" ]]; then
    export TORCH_CUDA_ARCH_LIST
fi
log "building apex from ${APEX_GIT} for ${TORCH_CUDA_ARCH_LIST:-the default CUDA architectures}"
pip_install --no-build-isolation \
    --global-option=--cpp_ext --global-option=--cuda_ext \
    "git+${APEX_GIT}"
python -c 'import apex, amp_C; print("apex with CUDA extensions")'
