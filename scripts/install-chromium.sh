#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests when it is missing (tests/browser).
# The browser is $IMAGEGEN_CHROMIUM, default /usr/bin/chromium. Playwright's own browser
# download is not used: the tests launch this one.
set -euo pipefail

chromium="${IMAGEGEN_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$chromium" ]; then
  echo "browsers: Chromium is installed ($chromium)"
  exit 0
fi

if [ "$chromium" != /usr/bin/chromium ]; then
  echo "browsers: IMAGEGEN_CHROMIUM=$chromium is not an executable file" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "browsers: Chromium is missing and apt-get is not available: install Chromium and set" \
       "IMAGEGEN_CHROMIUM to its path" >&2
  exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "browsers: Chromium is missing; installing it needs root, and sudo is not available." \
         "Run as root: apt-get install chromium" >&2
    exit 1
  fi
fi

echo "browsers: installing Debian's chromium with apt-get"
if ! { "${sudo[@]}" apt-get update -q \
       && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; then
  echo "browsers: apt-get could not install chromium" >&2
  exit 1
fi

if [ ! -x "$chromium" ]; then
  echo "browsers: apt-get finished, but $chromium is still missing" >&2
  exit 1
fi
echo "browsers: Chromium is installed ($chromium)"
