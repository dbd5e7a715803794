#!/usr/bin/env bash
# CUDA images only. When WITH_NCCL=1: builds NCCL into /container/nccl and
# GDRCopy's library into /usr. WITH_NCCL empty or 0: does nothing (the CUDA
# image's NCCL, if any, is used). The build tool passes WITH_NCCL=1 only to
# the bases that take NCCL (the CUDA 11.3 base); the AWS OFI-NCCL plugin on
# top of it is built by install_aws_ofi_nccl.sh in the framework image.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NCCL_VERSION=2.15.5-1
# NCCL is built for sm_80 (A100), the GPUs of the EFA systems it is for.
NCCL_GENCODE="-gencode=arch=compute_80,code=sm_80"
GDRCOPY_VERSION=2.3
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"

if ! enabled "${WITH_NCCL:-}"; then
    log "WITH_NCCL is not 1: using the NCCL of the base image, if any"
    exit 0
fi
if [[ ! -d "${CUDA_HOME}" ]]; then
    echo "WITH_NCCL=1 needs CUDA at ${CUDA_HOME}" >&2
    exit 1
fi

work="$(mktemp -d)"

log "building NCCL ${NCCL_VERSION}"
git clone --quiet --depth 1 --branch "v${NCCL_VERSION}" https://github.com/NVIDIA/nccl.git "${work}/nccl"
(
    cd "${work}/nccl"
    make -j "$(make_jobs)" src.build CUDA_HOME="${CUDA_HOME}" NVCC_GENCODE="${NCCL_GENCODE}"
    make install PREFIX=/container/nccl
)

log "building GDRCopy ${GDRCOPY_VERSION} (library)"
fetch "https://github.com/NVIDIA/gdrcopy/archive/refs/tags/v${GDRCOPY_VERSION}.tar.gz" "${work}/gdrcopy.tgz"
tar -xzf "${work}/gdrcopy.tgz" -C "${work}"
(
    cd "${work}/gdrcopy-${GDRCOPY_VERSION}"
    # prefix= (GDRCopy 2.3) and PREFIX= (older Makefiles) name the same place.
    make prefix=/usr PREFIX=/usr CUDA="${CUDA_HOME}" lib lib_install
)

rm -rf "${work}"
ldconfig
