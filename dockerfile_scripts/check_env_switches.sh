#!/usr/bin/env bash
# Checks that the ENV switches the build tool passes agree with the WITH_*
# settings: MPI_ON, OFI_ON, NCCL_ON are "1" with WITH_MPI/WITH_OFI/WITH_NCCL=1
# and empty otherwise, UCX_ON is "ucx" unless WITH_OFI=1. The recipes' ENV
# reads the switches (a Dockerfile can only test a value for being empty),
# so a build by hand that passes WITH_MPI=1 alone stops here, naming them.
# The CPU recipe declares no WITH_NCCL/NCCL_ON: both count as off.
# Usage: WITH_MPI=1 MPI_ON=1 ... check_env_switches.sh
set -euo pipefail

want_ucx=ucx
if [ "${WITH_OFI:-0}" = 1 ]; then
    want_ucx=
fi
if [ "${MPI_ON:-0}${OFI_ON:-0}${NCCL_ON:-0}" != "${WITH_MPI:-0}${WITH_OFI:-0}${WITH_NCCL:-0}" ] ||
    [ "${UCX_ON:-}" != "$want_ucx" ]; then
    echo "MPI_ON=${MPI_ON:-} OFI_ON=${OFI_ON:-} NCCL_ON=${NCCL_ON:-} UCX_ON=${UCX_ON:-} do not match" \
        "WITH_MPI=${WITH_MPI:-} WITH_OFI=${WITH_OFI:-} WITH_NCCL=${WITH_NCCL:-}:" \
        "build with the build tool (mage), which passes them" >&2
    exit 1
fi
