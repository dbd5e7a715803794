#!/usr/bin/env bash
# Installs conda into /opt/conda (the Dockerfiles put /opt/conda/bin first in
# PATH) with Python PYTHON_VERSION in its base environment: Miniconda
# (defaults channel) on amd64, Miniforge (conda-forge) on arm64, where
# Miniconda 4.10.3 has no installer. Both installers are checked against
# their published checksums (sha256 for Miniconda; md5, the only one
# published, for Miniforge). Python stays exactly PYTHON_VERSION through
# `conda update --all`: conda's classic solver would otherwise move it to the
# newest patch of the same minor series. Creates /etc/determined/conda.d, where
# Determined looks for conda environment hooks. On CUDA images, adds Ubuntu's
# libffi7 (3.3-4), which scrape_libs.sh preloads.
# Usage: PYTHON_VERSION=3.8.12 TARGETARCH=amd64 install_python.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONDA_DIR=/opt/conda
version="${PYTHON_VERSION:?PYTHON_VERSION is required (e.g. 3.8.12)}"
if [[ ! "${version}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "PYTHON_VERSION must be MAJOR.MINOR.PATCH, got '${version}'" >&2
    exit 1
fi

case "$(target_arch)" in
amd64)
    url=https://repo.anaconda.com/miniconda/Miniconda3-py39_4.10.3-Linux-x86_64.sh
    sum=1ea2f885b4dbc3098662845560bc64271eb17085387a70c2ba3f29fff6f8d52f
    check=sha256sum
    ;;
arm64)
    url=https://github.com/conda-forge/miniforge/releases/download/4.10.3-10/Miniforge3-4.10.3-10-Linux-aarch64.sh
    sum=85d7ea630bb91259bf09f6d52a5ec1c4
    check=md5sum
    ;;
*)
    echo "unsupported architecture '$(target_arch)' (want amd64 or arm64)" >&2
    exit 1
    ;;
esac

work="$(mktemp -d)"
log "installing conda from ${url} into ${CONDA_DIR}"
fetch "${url}" "${work}/conda.sh"
echo "${sum}  ${work}/conda.sh" | "${check}" -c -
bash "${work}/conda.sh" -b -p "${CONDA_DIR}"
rm -rf "${work}"

conda="${CONDA_DIR}/bin/conda"
"${conda}" install -y "python=${version}"
# conda-meta/pinned holds Python at PYTHON_VERSION while everything else is
# updated; it is removed afterwards, so conda in the image behaves as before.
pinned="${CONDA_DIR}/conda-meta/pinned"
echo "python ==${version}" >"${pinned}"
"${conda}" update -y --all
rm -f "${pinned}"
"${conda}" clean --all -f -y
mkdir -p /etc/determined/conda.d

python -m pip install --no-cache-dir --disable-pip-version-check --upgrade \
    pip==23.0.1 setuptools==67.6.1 wheel==0.40.0

if [[ -d /usr/local/cuda ]]; then
    fetch http://archive.ubuntu.com/ubuntu/pool/main/libf/libffi/libffi7_3.3-4_amd64.deb "/tmp/libffi7.deb"
    dpkg -i /tmp/libffi7.deb
    rm -f /tmp/libffi7.deb
fi

actual="$(python -c 'import platform; print(platform.python_version())')"
if [[ "${actual}" != "${version}" ]]; then
    echo "conda's Python is ${actual}, want ${version}" >&2
    exit 1
fi
log "python is ${actual} ($(command -v python))"
