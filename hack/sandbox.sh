#!/usr/bin/env bash
# Make sure the checker can confine model-written programs: bubblewrap (the sandbox) and the two
# interpreters it runs answers with, Debian's python3 and nodejs (the sandbox binds only /usr).
set -euo pipefail
missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
[[ -x /usr/bin/python3 ]] || missing+=(python3)
[[ -x /usr/bin/node ]] || missing+=(nodejs)
if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
echo "sandbox: installing ${missing[*]} from Debian's packages" >&2
$SUDO apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
