#!/usr/bin/env bash
# What `make test` needs from the machine beyond Python: a Chromium for the browser tests (tests/e2e) and Korean
# fonts for the screenshots they keep. Installs what is missing with apt-get when it can (root, or passwordless
# sudo); when it cannot, stops with the one command to run instead of letting every browser test error.
#
# CHROMIUM_PATH, when set, is the browser the tests use (tests/e2e/conftest.py): it must exist, nothing is
# installed for it. Otherwise `chromium` must be on PATH, which is where Debian's package puts it.
set -uo pipefail

need=()
if [ -n "${CHROMIUM_PATH:-}" ]; then
  if [ ! -x "$CHROMIUM_PATH" ]; then
    echo "kbilling: CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file; point it at a Chromium, or unset it" \
      "to use Debian's chromium." >&2
    exit 1
  fi
else
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
if ! command -v fc-list >/dev/null 2>&1; then
  need+=(fontconfig fonts-noto-cjk)
elif [ -z "$(fc-list :lang=ko family 2>/dev/null)" ]; then
  need+=(fonts-noto-cjk)
fi
[ ${#need[@]} -eq 0 ] && exit 0

command_to_run="sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}"
cannot() {
  echo "kbilling: the browser tests need ${need[*]} and $1. Run this once, then make test again:" >&2
  echo "  $command_to_run" >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 || {
  command_to_run="install ${need[*]} with your package manager (or set CHROMIUM_PATH to a Chromium)"
  cannot "this machine has no apt-get"
}
if [ "$(id -u 2>/dev/null)" = 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  sudo=(sudo -n)
else
  cannot "installing needs root (no passwordless sudo here)"
fi

echo "kbilling: installing ${need[*]} with apt-get (needed by the browser tests; once per machine)"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq || cannot "apt-get update failed (no network?)"
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" || cannot "apt-get install failed"
if [ -z "${CHROMIUM_PATH:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  cannot "apt-get installed no chromium on PATH"
fi
