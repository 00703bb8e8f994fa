#!/usr/bin/env bash
# Idempotent set-up on Debian 12: the Debian packages, then a virtualenv with the locked
# Python packages (torch==2.13.0 CPU build pinned through constraints.txt).
#   scripts/setup.sh            # what `make setup` runs
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS="gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm espeak-ng openocd stlink-tools g++ make"
missing=""
for p in $DEBS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY=${PYTHON:-python3}
stamp=.venv/.installed-$(sha256sum requirements.lock constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: creating .venv from requirements.lock"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -r requirements.lock
  rm -f .venv/.installed-*
  touch "$stamp"
fi
echo "setup: ok ($(.venv/bin/python --version), $(arm-none-eabi-gcc --version | head -1), $(qemu-system-arm --version | head -1))"
