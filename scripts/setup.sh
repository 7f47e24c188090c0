#!/usr/bin/env bash
# Installs the Debian packages named as arguments (when missing) and the Python package with its test extras.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
# The Spark class archive run JVMs start from (~2.5 s sooner each); runs work without it.
flare jvm-archive >/dev/null || echo "warning: no Spark class archive was built; runs start without one" >&2
