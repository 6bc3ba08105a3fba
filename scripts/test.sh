#!/usr/bin/env bash
# Install what the test suite needs, then run it. This is the command CI runs (.ci/run).
#   scripts/test.sh [pytest arguments]
# System packages (fuse3, libfuse2, rsync; gcc and perl build and run pjdfstest) are installed with apt-get when missing and we
# are root; the Python side goes into .venv (created if needed) with `pip install .[test]`.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(fuse3 rsync python3-venv systemd acl attr gcc libc6-dev perl)
missing=()
for package in "${apt_packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
# libfuse2 is the fallback binding's library (Ubuntu 24.04 calls it libfuse2t64).
if ! ldconfig -p 2>/dev/null | grep -q 'libfuse\.so\.2'; then
    missing+=("libfuse2")
fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        echo "scripts/test.sh: missing system packages: ${missing[*]}; install them (as root: apt-get install ${missing[*]})" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    if ! apt-get install -y -qq "${missing[@]}" >/dev/null; then
        missing=("${missing[@]/libfuse2/libfuse2t64}")
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet ".[test]"
exec .venv/bin/python -m pytest "$@"
