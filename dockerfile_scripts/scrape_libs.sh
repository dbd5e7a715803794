#!/usr/bin/env bash
# Entrypoint of the CUDA images (/container/bin/scrape_libs.sh): prepares the
# library path for the AWS OFI-NCCL plugin, then runs the command.
#
# Only when the plugin was built (/container/aws/lib exists):
#   - a libfabric* the host mounted under /host is linked into
#     /var/tmp/<user>/detAI/lib, which goes first in LD_LIBRARY_PATH; its
#     directory, /host/usr/lib64 and /host/usr/local/lib64 go last. A vendor
#     libfabric (e.g. HPE Slingshot's) then replaces the container's;
#   - /container/aws/lib goes first;
#   - unless already set: CUDA_CACHE_PATH (a fresh /var/tmp/<user>-nvcache-*),
#     TF_FORCE_GPU_ALLOW_GROWTH=true, FI_CXI_DISABLE_HOST_REGISTER=1
#     (libfabric/CUDA memory registration workaround);
#   - libffi.so.7 and libp11-kit.so.0 are added to LD_PRELOAD if readable.
# Then it execs its arguments (CMD: /bin/bash).
# SCRAPE_LIBS_ROOT, if set, is put in front of every path it looks at (for
# its tests, magefiles/recipes/scrape_libs_test.go).
set -euo pipefail

r="${SCRAPE_LIBS_ROOT:-}"
if [[ -d "${r}/container/aws/lib" ]]; then
    user="$(id -un 2>/dev/null || id -u)"
    first=""
    last=""
    host_lib="$(find "${r}/host" -name 'libfabric*' -print -quit 2>/dev/null || true)"
    if [[ -n "${host_lib}" ]]; then
        link_dir="${r}/var/tmp/${user}/detAI/lib"
        mkdir -p "${link_dir}"
        ln -sf "${host_lib}" "${link_dir}/"
        first="${link_dir}:"
        last=":$(dirname "${host_lib}"):${r}/host/usr/lib64:${r}/host/usr/local/lib64"
    fi
    export LD_LIBRARY_PATH="${r}/container/aws/lib:${first}${LD_LIBRARY_PATH:-}${last}"

    if [[ -z "${CUDA_CACHE_PATH:-}" ]]; then
        CUDA_CACHE_PATH="$(mktemp -d "${r}/var/tmp/${user}-nvcache-XXXXXX")"
        export CUDA_CACHE_PATH
    fi
    export TF_FORCE_GPU_ALLOW_GROWTH="${TF_FORCE_GPU_ALLOW_GROWTH:-true}"
    export FI_CXI_DISABLE_HOST_REGISTER="${FI_CXI_DISABLE_HOST_REGISTER:-1}"

    for lib in "${r}/usr/lib/x86_64-linux-gnu/libffi.so.7" "${r}/usr/lib/x86_64-linux-gnu/libp11-kit.so.0"; do
        if [[ -r "${lib}" ]]; then
            export LD_PRELOAD="${LD_PRELOAD:+${LD_PRELOAD}:}${lib}"
        fi
    done
fi

exec "$@"
