#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests when it is missing (tests/browser).
# The browser is $IMAGEGEN_CHROMIUM, default /usr/bin/chromium. Playwright's own browser
# download is not used: the tests launch this one.
#
# This runs on a developer's own machine, so it touches as little as it can: the chromium
# package and the libraries it depends on, without recommended packages (which pull in about
# a hundred more, systemd among them); `apt-get update` only when the package lists have no
# chromium or are too old to download it; and never an upgrade of a package already installed.
# If installing chromium would upgrade one, it stops and says so instead.
set -euo pipefail

# Where Debian's package puts the browser (the tests of this script change it).
packaged="${IMAGEGEN_CHROMIUM_PACKAGED:-/usr/bin/chromium}"
chromium="${IMAGEGEN_CHROMIUM:-$packaged}"

if [ -x "$chromium" ]; then
  echo "browsers: Chromium is installed ($chromium)"
  exit 0
fi

if [ "$chromium" != "$packaged" ]; then
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
         "Run as root: apt-get install --no-install-recommends chromium" >&2
    exit 1
  fi
fi

# --no-upgrade: an installed chromium package is left as it is.
install_args=(install -y -q --no-install-recommends --no-upgrade chromium)

has_candidate() {  # the package lists know a chromium to install
  apt-cache policy chromium 2>/dev/null | grep -Eq '^ *Candidate: [^(]'
}

upgrades() {  # installed packages that installing chromium would upgrade (a simulation)
  apt-get -s "${install_args[@]}" 2>/dev/null | sed -n 's/^Inst \([^ ]*\) \[.*/\1/p'
}

update() {
  echo "browsers: apt-get update ($1)"
  "${sudo[@]}" apt-get update -q
}

refused=3  # install's status when it would have to upgrade something

install() {
  local upgraded
  upgraded="$(upgrades | tr '\n' ' ')"
  if [ -n "$upgraded" ]; then
    echo "browsers: installing chromium would upgrade packages already installed: $upgraded" >&2
    echo "browsers: this script never upgrades system packages. Install Chromium yourself" \
         "(apt-get install --no-install-recommends chromium), or set IMAGEGEN_CHROMIUM to" \
         "a Chromium binary." >&2
    return "$refused"
  fi
  echo "browsers: apt-get install --no-install-recommends chromium"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${install_args[@]}"
}

updated=0
if ! has_candidate; then
  if ! update "the package lists have no chromium"; then
    echo "browsers: apt-get update failed" >&2
    exit 1
  fi
  updated=1
fi

status=0
install || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne "$refused" ] && [ "$updated" -eq 0 ]; then
  # Most often the lists name a version the mirror no longer has: refresh them, try once more.
  if update "the install failed, and the package lists may be out of date"; then
    status=0
    install || status=$?
  fi
fi
if [ "$status" -eq "$refused" ]; then
  exit 1
elif [ "$status" -ne 0 ]; then
  echo "browsers: apt-get could not install chromium" >&2
  exit 1
fi

if [ ! -x "$chromium" ]; then
  echo "browsers: apt-get finished, but $chromium is still missing" >&2
  exit 1
fi
echo "browsers: Chromium is installed ($chromium)"
