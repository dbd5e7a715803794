#!/usr/bin/env bash
# Builds CPython PYTHON_VERSION from the python.org source release into
# /usr/local, for the architecture being built (TARGETARCH: amd64 or arm64),
# and installs pinned pip, setuptools and wheel. `python`, `python3`, `pip`
# and `pip3` all point at it.
# Usage: PYTHON_VERSION=3.8.12 TARGETARCH=amd64 install_python.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

version="${PYTHON_VERSION:?PYTHON_VERSION is required (e.g. 3.8.12)}"
if [[ ! "${version}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "PYTHON_VERSION must be MAJOR.MINOR.PATCH, got '${version}'" >&2
    exit 1
fi
short="${version%.*}"

configure_flags=(--prefix=/usr/local --enable-shared --with-ensurepip=install
    "LDFLAGS=-Wl,-rpath,/usr/local/lib")
case "$(target_arch)" in
amd64)
    # Profile-guided optimisation: worth it natively.
    configure_flags+=(--enable-optimizations)
    ;;
arm64)
    # arm64 images are usually built under QEMU emulation, where PGO's
    # test-suite run takes hours; build without it.
    ;;
*)
    echo "unsupported architecture '$(target_arch)' (want amd64 or arm64)" >&2
    exit 1
    ;;
esac

work="$(mktemp -d)"
log "building Python ${version} for $(target_arch)"
fetch "https://www.python.org/ftp/python/${version}/Python-${version}.tgz" "${work}/python.tgz"
tar -xzf "${work}/python.tgz" -C "${work}"
(
    cd "${work}/Python-${version}"
    ./configure "${configure_flags[@]}"
    make -j "$(make_jobs)"
    make install
)
rm -rf "${work}"
ldconfig

ln -sf "/usr/local/bin/python${short}" /usr/local/bin/python
ln -sf "/usr/local/bin/python${short}" /usr/local/bin/python3
ln -sf "/usr/local/bin/pip${short}" /usr/local/bin/pip
ln -sf "/usr/local/bin/pip${short}" /usr/local/bin/pip3

PYTHON="/usr/local/bin/python${short}" pip_install --upgrade \
    pip==23.0.1 setuptools==67.6.1 wheel==0.40.0

actual="$(python3 -c 'import platform; print(platform.python_version())')"
if [[ "${actual}" != "${version}" ]]; then
    echo "installed Python is ${actual}, want ${version}" >&2
    exit 1
fi
log "python3 is ${actual}"
