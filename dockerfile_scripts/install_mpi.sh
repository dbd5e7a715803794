#!/usr/bin/env bash
# Builds OpenMPI into /usr/local when WITH_MPI=1: with UCX by default, or with
# libfabric (OFI) instead when WITH_OFI=1. CUDA support is enabled when the
# image has CUDA (/usr/local/cuda). WITH_MPI empty or 0: does nothing.
# Usage: WITH_MPI=1 WITH_OFI=0 install_mpi.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OPENMPI_VERSION=4.1.4
UCX_VERSION=1.13.1

if ! enabled "${WITH_MPI:-}"; then
    if enabled "${WITH_OFI:-}"; then
        echo "WITH_OFI=1 needs WITH_MPI=1" >&2
        exit 1
    fi
    log "WITH_MPI is not 1: no MPI"
    exit 0
fi

cuda_flags=()
if [[ -d /usr/local/cuda ]]; then
    cuda_flags=(--with-cuda=/usr/local/cuda)
fi

work="$(mktemp -d)"
mpi_flags=(--prefix=/usr/local --enable-orterun-prefix-by-default --disable-getpwuid "${cuda_flags[@]}")

if enabled "${WITH_OFI:-}"; then
    "$(dirname "${BASH_SOURCE[0]}")/install_libfabric.sh"
    mpi_flags+=(--with-ofi=/usr/local --without-ucx)
else
    log "building UCX ${UCX_VERSION}"
    fetch "https://github.com/openucx/ucx/releases/download/v${UCX_VERSION}/ucx-${UCX_VERSION}.tar.gz" "${work}/ucx.tgz"
    tar -xzf "${work}/ucx.tgz" -C "${work}"
    (
        cd "${work}/ucx-${UCX_VERSION}"
        ./configure --prefix=/usr/local --enable-mt --disable-debug --disable-assertions \
            --disable-params-check "${cuda_flags[@]}"
        make -j "$(make_jobs)"
        make install
    )
    mpi_flags+=(--with-ucx=/usr/local --without-verbs)
fi

log "building OpenMPI ${OPENMPI_VERSION} (${mpi_flags[*]})"
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

cat >>/usr/local/etc/openmpi-mca-params.conf <<'CONF'
# Determined: keep MPI off the loopback and docker bridge interfaces.
btl_tcp_if_exclude = lo,docker0
oob_tcp_if_exclude = lo,docker0
CONF
log "$(mpirun --allow-run-as-root --version | head -n 1)"
