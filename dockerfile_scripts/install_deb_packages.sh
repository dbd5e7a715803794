#!/usr/bin/env bash
# Installs the OS packages of every image, as the previous images had them:
# build tools, ssh client and server, Kerberos and NFS clients, daemontools,
# NUMA and PMI2 (Slurm) libraries; on CUDA images the InfiniBand verbs
# runtime (MOFED brings the verbs headers that UCX builds against). Then one unattended-upgrade run. Every image gets its own ssh host keys at
# runtime: the keys made by openssh-server's installation are deleted.
# Usage: install_deb_packages.sh [EXTRA_PACKAGE...]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The base images' own repositories (CUDA, ROCm) are dropped: their lists go
# stale (NVIDIA rotated its signing key in 2022, so `apt-get update` fails
# on the CUDA images' lists) and nothing is installed from them.
rm -f /etc/apt/sources.list.d/*

packages=(
    autoconf
    automake
    autotools-dev
    build-essential
    bzip2
    ca-certificates
    cmake
    curl
    daemontools
    git
    krb5-user
    libkrb5-dev
    libssl-dev
    libtool
    make
    nfs-common
    openssh-client
    openssh-server
    pkg-config
    unattended-upgrades
    wget
)
if [[ -d /opt/rocm ]]; then
    # As the previous ROCm image: g++-4.8 next to the default g++, no NUMA
    # or PMI libraries.
    packages+=(g++ g++-4.8)
else
    packages+=(g++ libnuma1 libnuma-dev libpmi2-0-dev)
fi
if [[ -d /usr/local/cuda ]]; then
    packages+=(ibverbs-providers libibverbs1 librdmacm1)
fi
packages+=("$@")

log "installing ${#packages[@]} packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${packages[@]}"
unattended-upgrade
rm -rf /var/lib/apt/lists/*

# Ubuntu 18.04 keeps the PMI headers under slurm-wlm; OpenMPI's --with-pmi
# looks in /usr/include/slurm.
if [[ -d /usr/include/slurm-wlm && ! -e /usr/include/slurm ]]; then
    ln -s /usr/include/slurm-wlm /usr/include/slurm
fi

rm -f /etc/ssh/ssh_host_ecdsa_key /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_rsa_key
# sshd needs its privilege separation directory (used by distributed launches).
mkdir -p /var/run/sshd
