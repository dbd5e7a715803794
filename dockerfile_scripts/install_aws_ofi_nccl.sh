#!/usr/bin/env bash
# CUDA framework images only. When AWS_PLUGIN=1 (the build tool passes it to
# tf2-gpu when its base was built with WITH_OFI=1 and WITH_NCCL=1): builds
# the AWS OFI-NCCL plugin (NCCL over libfabric, e.g. AWS EFA) v1.4.0 into
# /container/aws, against /container/ofi, /container/nccl and
# /container/ompi. AWS_PLUGIN empty: does nothing.
#
# As the previous images did, the plugin's source is the public v1.4.0 tag,
# or, whenever the BuildKit secret INTERNAL_AWS_DS is given, the internal
# tarball http://<INTERNAL_AWS_DS><INTERNAL_AWS_PATH>/aws-ofi-nccl.tar.gz.
# The secrets never reach a build argument (kept in the image history), an
# argv or a log:
#   /run/secrets/INTERNAL_AWS_DS    host (and path prefix) of the internal store
#   /run/secrets/INTERNAL_AWS_PATH  path of the plugin's directory under it
# WITH_AWS_TRACE=1 builds it with tracing (--enable-trace).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AWS_OFI_NCCL_VERSION=1.4.0
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"

if [[ "${AWS_PLUGIN:-}" != 1 ]]; then
    if enabled "${WITH_AWS_TRACE:-}"; then
        echo "WITH_AWS_TRACE=1 traces the AWS OFI-NCCL plugin, which this image does not build (AWS_PLUGIN is not 1)" >&2
        exit 1
    fi
    log "AWS_PLUGIN is not 1: no AWS OFI-NCCL plugin"
    exit 0
fi
for need in /container/ofi/lib/libfabric.so /container/nccl/lib /container/ompi; do
    if [[ ! -e "${need}" ]]; then
        echo "AWS_PLUGIN=1 needs a base built with WITH_MPI=1 WITH_OFI=1 WITH_NCCL=1: ${need} is missing" >&2
        exit 1
    fi
done

apt_install tcsh
plugin_flags=(--prefix=/container/aws --with-libfabric=/container/ofi --with-nccl=/container/nccl
    --with-mpi=/container/ompi --with-gdrcopy=/usr --with-cuda="${CUDA_HOME}/targets/$(uname -m)-linux")
if enabled "${WITH_AWS_TRACE:-}"; then
    plugin_flags+=(--enable-trace)
fi

work="$(mktemp -d)"
mkdir -p "${work}/plugin"
ds_file=/run/secrets/INTERNAL_AWS_DS
path_file=/run/secrets/INTERNAL_AWS_PATH
if [[ -s "${ds_file}" ]]; then
    log "building the AWS OFI-NCCL plugin from the internal source"
    ds="$(tr -d '\r\n' <"${ds_file}")"
    path=""
    if [[ -s "${path_file}" ]]; then
        path="$(tr -d '\r\n' <"${path_file}")"
    fi
    # Hand the URL to curl on stdin so it appears in no argv or log (it is
    # plain http, as before; not a declared input: the secrets name it).
    printf 'url = "%s://%s%s/aws-ofi-nccl.tar.gz"\n' http "${ds}" "${path}" |
        curl --config - --fail --silent --location --retry 5 -o "${work}/plugin.tgz"
    unset ds path
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
