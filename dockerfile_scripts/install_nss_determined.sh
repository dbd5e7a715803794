#!/usr/bin/env bash
# Installs a built libnss_determined.so.2 into the system library directory,
# refreshes the loader cache and lists the "determined" service first in
# /etc/nsswitch.conf for passwd, group and shadow (nsswitch_add_determined.sh).
# The Dockerfiles build the library first, from the directory that holds
# dockerfile_scripts/, with exactly:
#   cc -shared -fPIC -Wall -Werror -O2 -o libnss_determined.so.2 dockerfile_scripts/libnss_determined/*.c
# Usage: install_nss_determined.sh PATH/TO/libnss_determined.so.2
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lib="${1:?usage: install_nss_determined.sh PATH/TO/libnss_determined.so.2}"
if [[ ! -f "${lib}" ]]; then
    echo "no such file: ${lib}" >&2
    exit 1
fi

# The multiarch directory glibc searches, e.g. /lib/x86_64-linux-gnu.
triplet="$(gcc -print-multiarch)"
libdir="/lib/${triplet}"
if [[ -z "${triplet}" || ! -d "${libdir}" ]]; then
    libdir="/lib"
fi
install -m 0644 "${lib}" "${libdir}/libnss_determined.so.2"
ldconfig
log "installed ${libdir}/libnss_determined.so.2"

"$(dirname "${BASH_SOURCE[0]}")/nsswitch_add_determined.sh" /etc/nsswitch.conf
