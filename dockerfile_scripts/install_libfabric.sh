#!/usr/bin/env bash
# Builds libfabric (OFI) into /container/ofi unless it is already there. Used
# by install_mpi.sh when WITH_OFI=1. The verbs provider needs the verbs and
# RDMA CM headers (libibverbs-dev, librdmacm-dev: install_deb_packages.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LIBFABRIC_VERSION=1.15.1
PREFIX=/container/ofi

if [[ -e "${PREFIX}/lib/libfabric.so" ]]; then
    log "libfabric is already installed"
    exit 0
fi

work="$(mktemp -d)"
log "building libfabric ${LIBFABRIC_VERSION}"
fetch "https://github.com/ofiwg/libfabric/releases/download/v${LIBFABRIC_VERSION}/libfabric-${LIBFABRIC_VERSION}.tar.bz2" "${work}/libfabric.tar.bz2"
tar -xjf "${work}/libfabric.tar.bz2" -C "${work}"
(
    cd "${work}/libfabric-${LIBFABRIC_VERSION}"
    ./configure --prefix="${PREFIX}" --enable-verbs --enable-efa --enable-tcp --enable-sockets
    make -j "$(make_jobs)"
    make install
)
rm -rf "${work}"
ldconfig
