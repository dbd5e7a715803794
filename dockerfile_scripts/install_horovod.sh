#!/usr/bin/env bash
# Builds Horovod (HOROVOD_PIP; empty means skip) for the frameworks present:
#   TensorFlow: iff TENSORFLOW_PIP is set.
#   PyTorch:    HOROVOD_WITH_PYTORCH=1/0 when given, else iff torch imports.
#   MPI/Gloo:   HOROVOD_WITH_MPI, HOROVOD_WITHOUT_MPI, HOROVOD_CPU_OPERATIONS
#               (MPI or GLOO) as the tool passes them.
#   GPU:        CUDA images: HOROVOD_GPU=CUDA, NCCL from /container/nccl when
#               the base built it (WITH_NCCL=1), else the CUDA image's.
#               ROCm images: HOROVOD_GPU=ROCM with RCCL (/opt/rocm/rccl).
#               HOROVOD_GPU_OPERATIONS (NCCL or MPI) when given.
# cmake 3.22.4 and protobuf 3.20.3 are installed first, as Horovod needs them.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

read -ra spec <<<"${HOROVOD_PIP:-}"
if ((${#spec[@]} == 0)); then
    log "HOROVOD_PIP is empty: no Horovod"
    exit 0
fi

# yes_no NAME ON: exports HOROVOD_WITH_NAME=1 or HOROVOD_WITHOUT_NAME=1.
yes_no() {
    unset "HOROVOD_WITH_$1" "HOROVOD_WITHOUT_$1"
    if [[ "$2" == 1 ]]; then
        export "HOROVOD_WITH_$1=1"
    else
        export "HOROVOD_WITHOUT_$1=1"
    fi
}

tf=0
if [[ -n "${TENSORFLOW_PIP:-}" ]]; then
    tf=1
fi
case "${HOROVOD_WITH_PYTORCH:-}" in
1) torch=1 ;;
0) torch=0 ;;
*) if python -c 'import torch' 2>/dev/null; then torch=1; else torch=0; fi ;;
esac
yes_no TENSORFLOW "${tf}"
yes_no PYTORCH "${torch}"
yes_no MXNET 0

if enabled "${HOROVOD_WITH_MPI:-${WITH_MPI:-}}"; then
    yes_no MPI 1
else
    yes_no MPI 0
fi
export HOROVOD_WITH_GLOO=1
if [[ -z "${HOROVOD_CPU_OPERATIONS:-}" ]]; then
    unset HOROVOD_CPU_OPERATIONS
fi

stubs=""
if [[ -d /opt/rocm ]]; then
    export HOROVOD_GPU=ROCM HOROVOD_ROCM_HOME=/opt/rocm HOROVOD_NCCL_HOME=/opt/rocm/rccl
elif [[ -d /usr/local/cuda ]]; then
    export HOROVOD_GPU=CUDA HOROVOD_CUDA_HOME=/usr/local/cuda
    # Link against the driver stub: there is no GPU driver at build time.
    stubs="/usr/local/cuda/targets/$(uname -m)-linux/lib/stubs"
    if [[ -d /container/nccl/lib ]]; then
        export HOROVOD_NCCL_HOME=/container/nccl
    fi
fi
if [[ -n "${HOROVOD_GPU_OPERATIONS:-}" ]]; then
    export HOROVOD_NCCL_LINK=SHARED
else
    unset HOROVOD_GPU_OPERATIONS
fi

pip_install cmake==3.22.4 protobuf==3.20.3
if [[ -n "${stubs}" ]]; then
    ldconfig "${stubs}"
fi
log "building ${spec[*]}: $(env | grep '^HOROVOD_' | sort | tr '\n' ' ')"
pip_install --no-build-isolation "${spec[@]}"
if [[ -n "${stubs}" ]]; then
    # Drop the stub libcuda from the loader cache again: at runtime the
    # driver's libcuda must be found.
    ldconfig
fi
horovodrun --check-build
