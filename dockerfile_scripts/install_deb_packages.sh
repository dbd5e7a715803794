#!/usr/bin/env bash
# Installs the OS packages every image needs: compilers (gcc for the NSS
# module, Horovod, apex), Python's build dependencies, and tools used by
# Determined tasks (ssh for distributed training, git, curl).
# Usage: install_deb_packages.sh [EXTRA_PACKAGE...]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export DEBIAN_FRONTEND=noninteractive

packages=(
    autoconf
    automake
    build-essential
    ca-certificates
    cmake
    curl
    file
    git
    libbz2-dev
    libffi-dev
    libgdbm-dev
    liblzma-dev
    libncursesw5-dev
    libnuma-dev
    libreadline-dev
    libsqlite3-dev
    libssl-dev
    libtool
    libxml2-dev
    locales
    make
    openssh-client
    openssh-server
    pkg-config
    rdma-core
    libibverbs-dev
    tk-dev
    unzip
    uuid-dev
    wget
    xz-utils
    zlib1g-dev
    "$@"
)

log "installing ${#packages[@]} packages"
apt-get update
apt-get install -y --no-install-recommends "${packages[@]}"
apt-get clean
rm -rf /var/lib/apt/lists/*

# sshd needs its privilege separation directory (used by distributed launches).
mkdir -p /run/sshd
