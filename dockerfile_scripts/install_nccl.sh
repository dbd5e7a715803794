#!/usr/bin/env bash
# CUDA images only. When WITH_NCCL=1: builds NCCL into /container/nccl and
# GDRCopy's library into /usr; with WITH_OFI=1 as well, the AWS OFI-NCCL
# plugin (NCCL over libfabric, e.g. AWS EFA) into /container/aws. WITH_NCCL
# empty or 0: does nothing (the CUDA image's NCCL, if any, is used).
#
# WITH_AWS_TRACE=1 builds the plugin with tracing (--enable-trace) from an
# internal source tarball instead of the public release. Its location comes
# only from BuildKit secrets, never from build arguments (which would be kept
# in the image history):
#   /run/secrets/INTERNAL_AWS_DS    base URL of the internal store
#   /run/secrets/INTERNAL_AWS_PATH  path of the plugin's .tar.gz under it
# The values are never printed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NCCL_VERSION=2.15.5-1
# NCCL is built for sm_80 (A100), the GPUs of the EFA systems it is for.
NCCL_GENCODE="-gencode=arch=compute_80,code=sm_80"
GDRCOPY_VERSION=2.3
AWS_OFI_NCCL_VERSION=1.4.0-aws
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"

if ! enabled "${WITH_NCCL:-}"; then
    if enabled "${WITH_AWS_TRACE:-}"; then
        echo "WITH_AWS_TRACE=1 needs WITH_NCCL=1" >&2
        exit 1
    fi
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

if ! enabled "${WITH_OFI:-}"; then
    log "WITH_OFI is not 1: no AWS OFI-NCCL plugin"
    rm -rf "${work}"
    ldconfig
    exit 0
fi
apt_install tcsh
plugin_flags=(--prefix=/container/aws --with-libfabric=/container/ofi --with-nccl=/container/nccl
    --with-mpi=/container/ompi --with-gdrcopy=/usr --with-cuda="${CUDA_HOME}/targets/$(uname -m)-linux")

mkdir -p "${work}/plugin"
if enabled "${WITH_AWS_TRACE:-}"; then
    ds_file=/run/secrets/INTERNAL_AWS_DS
    path_file=/run/secrets/INTERNAL_AWS_PATH
    if [[ ! -s "${ds_file}" || ! -s "${path_file}" ]]; then
        echo "WITH_AWS_TRACE=1 needs the BuildKit secrets INTERNAL_AWS_DS and INTERNAL_AWS_PATH" >&2
        exit 1
    fi
    log "building the AWS OFI-NCCL plugin with tracing from the internal source"
    ds="$(tr -d '\r\n' <"${ds_file}")"
    path="$(tr -d '\r\n' <"${path_file}")"
    # Hand the URL to curl on stdin so it appears in no argv or log.
    printf 'url = "%s/%s"\n' "${ds%/}" "${path#/}" |
        curl --config - --fail --silent --location --retry 5 -o "${work}/plugin.tgz"
    unset ds path
    plugin_flags+=(--enable-trace)
else
    log "building the AWS OFI-NCCL plugin ${AWS_OFI_NCCL_VERSION}"
    fetch "https://github.com/aws/aws-ofi-nccl/archive/refs/tags/v${AWS_OFI_NCCL_VERSION}.tar.gz" "${work}/plugin.tgz"
fi
tar -xzf "${work}/plugin.tgz" -C "${work}/plugin" --strip-components=1
(
    cd "${work}/plugin"
    if [[ ! -x configure ]]; then
        ./autogen.sh
    fi
    ./configure "${plugin_flags[@]}"
    make -j "$(make_jobs)"
    make install
)
rm -rf "${work}"
ldconfig
