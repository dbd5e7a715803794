#!/usr/bin/env bash
# Entrypoint of the CUDA images (/container/bin/scrape_libs.sh): prepares the
# library path for the AWS OFI-NCCL plugin, then runs the command.
#
# Only when the plugin was built (/container/aws/lib exists):
#   - the first libfabric.so the host mounted under /host is found, and
#     every file of its directory whose name contains "libfabric" (so
#     libfabric.so.1, the name programs load, too) is linked into
#     /var/tmp/<user>/detAI/lib, which goes first in LD_LIBRARY_PATH; that
#     directory, /host/usr/lib64 and /host/usr/local/lib64 go last. A vendor
#     libfabric (e.g. HPE Slingshot's) then replaces the container's;
#   - /container/aws/lib goes first;
#   - unless already set: CUDA_CACHE_PATH (a fresh /var/tmp/<user>-nvcache-*),
#     TF_FORCE_GPU_ALLOW_GROWTH=true, FI_CXI_DISABLE_HOST_REGISTER=1
#     (libfabric/CUDA memory registration workaround);
#   - libffi.so.7 and libp11-kit.so.0, if readable, go in front of LD_PRELOAD.
# Then it execs its arguments (CMD: /bin/bash).
# SCRAPE_LIBS_ROOT, if set, is put in front of every path it looks at (for
# its tests, magefiles/recipes/scrape_libs_test.go).
set -euo pipefail

r="${SCRAPE_LIBS_ROOT:-}"
if [[ -d "${r}/container/aws/lib" ]]; then
    user="$(id -un 2>/dev/null || id -u)"
    first=""
    last=""
    host_lib="$(find "${r}/host" -name libfabric.so -print -quit 2>/dev/null || true)"
    if [[ -n "${host_lib}" ]]; then
        host_dir="$(dirname "${host_lib}")"
        link_dir="${r}/var/tmp/${user}/detAI/lib"
        mkdir -p "${link_dir}"
        for lib in "${host_dir}"/*libfabric*; do
            ln -sf "${lib}" "${link_dir}/"
        done
        first="${link_dir}:"
        last=":${host_dir}:${r}/host/usr/lib64:${r}/host/usr/local/lib64"
    fi
    export LD_LIBRARY_PATH="${r}/container/aws/lib:${first}${LD_LIBRARY_PATH:-}${last}"

    if [[ -z "${CUDA_CACHE_PATH:-}" ]]; then
        CUDA_CACHE_PATH="$(mktemp -d "${r}/var/tmp/${user}-nvcache-XXXXXX")"
        export CUDA_CACHE_PATH
    fi
    export TF_FORCE_GPU_ALLOW_GROWTH="${TF_FORCE_GPU_ALLOW_GROWTH:-true}"
    export FI_CXI_DISABLE_HOST_REGISTER="${FI_CXI_DISABLE_HOST_REGISTER:-1}"

    preload=""
    for lib in "${r}/usr/lib/x86_64-linux-gnu/libffi.so.7" "${r}/usr/lib/x86_64-linux-gnu/libp11-kit.so.0"; do
        if [[ -r "${lib}" ]]; then
            preload="${preload}${lib}:"
        fi
    done
    if [[ -n "${preload}" ]]; then
        preload="${preload}${LD_PRELOAD:-}"
        export LD_PRELOAD="${preload%:}"
    fi
fi

exec "$@"
