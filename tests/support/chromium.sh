#!/usr/bin/env bash
# Installs Debian's chromium for the report's browser test when it is missing and we can: as root,
# with apt-get. Prints what it did. Never fails the caller: without a browser that test skips.
set -u
if command -v chromium >/dev/null 2>&1; then
  echo "chromium: already installed ($(command -v chromium))"
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not installed, and cannot install it here (needs root and apt-get); the browser test will skip"
  exit 0
fi
echo "chromium: installing with apt-get"
if apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; then
  echo "chromium: installed ($(command -v chromium))"
else
  echo "chromium: apt-get could not install it; the browser test will skip"
fi
exit 0
