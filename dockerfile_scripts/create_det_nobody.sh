#!/usr/bin/env bash
# Creates the det-nobody user and group (uid/gid 65533, shell /bin/bash, home
# /tmp/det-nobody, which exists); Determined runs tasks as this user when no
# other is configured. Idempotent.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

name=det-nobody
id=65533
home="/tmp/${name}"

if ! getent group "${name}" >/dev/null; then
    groupadd --gid "${id}" "${name}"
fi
if ! getent passwd "${name}" >/dev/null; then
    useradd --uid "${id}" --gid "${id}" --home-dir "${home}" --create-home \
        --shell /bin/bash "${name}"
fi
mkdir -p "${home}"
chown "${id}:${id}" "${home}"

if [[ "$(id -u "${name}")" != "${id}" || "$(id -g "${name}")" != "${id}" ]]; then
    echo "${name} exists with uid/gid $(id -u "${name}")/$(id -g "${name}"), want ${id}/${id}" >&2
    exit 1
fi
log "${name} is ${id}:${id}, home ${home}"
