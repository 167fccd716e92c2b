#!/usr/bin/env bash
# Make sure the browser tier can run: Debian's chromium (Playwright drives it through
# executable_path; `playwright install` is never run, it would download its own browsers) and
# axe-core from the npm registry, cached outside the repository: the tests inject it into the page,
# the product never ships it. Idempotent: installs nothing when both are already there.
# Prints the path of axe.min.js on stdout (tests/browser reads KAIZEN_AXE_JS, else this cache).
set -euo pipefail
AXE_VERSION=4.14.1
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/kaizen/axe-core-$AXE_VERSION
missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ -s $CACHE/axe.min.js ]] || command -v npm >/dev/null || missing+=(npm)
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  echo "browser: installing ${missing[*]} from Debian's packages" >&2
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
if [[ ! -s $CACHE/axe.min.js ]]; then
  echo "browser: fetching axe-core $AXE_VERSION from the npm registry into $CACHE" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # npm pack checks the tarball against the registry's integrity hash.
  (cd "$work" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null)
  tar -xzf "$work/axe-core-$AXE_VERSION.tgz" -C "$work" package/axe.min.js
  mkdir -p "$CACHE"
  mv "$work/package/axe.min.js" "$CACHE/axe.min.js"
fi
echo "$CACHE/axe.min.js"
