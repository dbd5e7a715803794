#!/usr/bin/env bash
# Builds libfabric (OFI) into /container/ofi unless it is already there. Used
# by install_mpi.sh when WITH_OFI=1. As in the previous images, without the
# verbs and EFA providers (they had no verbs headers to build them against;
# EFA needs rdma-core 27 or later): tcp, sockets, udp, shm and the others
# libfabric builds by default. A vendor libfabric on the host replaces this
# one at run time (scrape_libs.sh).
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
    ./configure --prefix="${PREFIX}" --disable-verbs --disable-efa
    make -j "$(make_jobs)"
    make install
)
rm -rf "${work}"
ldconfig
