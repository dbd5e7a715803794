#!/usr/bin/env bash
# When WITH_MPI=1, builds Open MPI into /container/ompi:
#   WITH_OFI=1: with libfabric (/container/ofi) instead of UCX.
#   otherwise:  with Mellanox OFED's user-space stack (MLNX_OFED, for
#               UBUNTU_VERSION) and UCX (/container/ucx).
# PMI (Slurm's libpmi2) is always on; CUDA support when the image has CUDA.
# WITH_MPI empty or 0: does nothing. The Dockerfiles set PATH and
# LD_LIBRARY_PATH for these prefixes.
# Usage: WITH_MPI=1 WITH_OFI=0 UBUNTU_VERSION=ubuntu20.04 install_mpi.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OPENMPI_VERSION=4.1.0
UCX_VERSION=1.10.1
MOFED_VERSION=5.4-3.4.0.0

if ! enabled "${WITH_MPI:-}"; then
    if enabled "${WITH_OFI:-}"; then
        echo "WITH_OFI=1 needs WITH_MPI=1" >&2
        exit 1
    fi
    log "WITH_MPI is not 1: no MPI"
    exit 0
fi
if [[ "$(target_arch)" != amd64 ]]; then
    echo "WITH_MPI=1 builds for linux/amd64 only (MLNX_OFED is x86_64), not $(target_arch)" >&2
    exit 1
fi

mpi_flags=(--prefix=/container/ompi --enable-shared --with-cma --with-pic --enable-mpi-cxx
    --enable-mpi-thread-multiple --with-pmi --with-pmix=internal)
if [[ -d /usr/local/cuda ]]; then
    mpi_flags+=(--with-cuda)
fi

work="$(mktemp -d)"
if enabled "${WITH_OFI:-}"; then
    "${SCRIPTS}/install_libfabric.sh"
    mpi_flags+=(--enable-orterun-prefix-by-default --with-libfabric=/container/ofi --without-ucx)
else
    ubuntu="${UBUNTU_VERSION:?UBUNTU_VERSION is required with WITH_MPI=1 (e.g. ubuntu20.04)}"
    mofed="MLNX_OFED_LINUX-${MOFED_VERSION}-${ubuntu}-x86_64"
    log "installing ${mofed} (user space)"
    fetch "https://content.mellanox.com/ofed/MLNX_OFED-${MOFED_VERSION}/${mofed}.tgz" "${work}/mofed.tgz"
    tar -xzf "${work}/mofed.tgz" -C "${work}"
    "${work}/${mofed}/mlnxofedinstall" --user-space-only --without-fw-update --all --force \
        --skip-unsupported-devices-check
    rm -rf /var/lib/apt/lists/*

    log "building UCX ${UCX_VERSION}"
    fetch "https://github.com/openucx/ucx/releases/download/v${UCX_VERSION}/ucx-${UCX_VERSION}.tar.gz" "${work}/ucx.tgz"
    tar -xzf "${work}/ucx.tgz" -C "${work}"
    (
        cd "${work}/ucx-${UCX_VERSION}"
        ./contrib/configure-release --prefix=/container/ucx --enable-mt
        make -j "$(make_jobs)"
        make install
    )
    mpi_flags+=(--with-verbs --with-platform=contrib/platform/mellanox/optimized --with-ucx=/container/ucx)
fi

log "building Open MPI ${OPENMPI_VERSION} (${mpi_flags[*]})"
fetch "https://download.open-mpi.org/release/open-mpi/v${OPENMPI_VERSION%.*}/openmpi-${OPENMPI_VERSION}.tar.gz" "${work}/openmpi.tgz"
tar -xzf "${work}/openmpi.tgz" -C "${work}"
(
    cd "${work}/openmpi-${OPENMPI_VERSION}"
    ./configure "${mpi_flags[@]}"
    make -j "$(make_jobs)"
    make install
)
rm -rf "${work}"
ldconfig
