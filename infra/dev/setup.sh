#!/usr/bin/env bash
# Installs what the platform needs on a Debian machine: system packages (apt) and the npm
# dependencies. Idempotent and quick when everything is already there. Used by `npm start`,
# `npm test` and CI, so a fresh clone needs nothing by hand.
set -euo pipefail
cd "$(dirname "$0")/../.."

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  echo "BionicPRO needs Node.js >= 20 (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

# System packages: command → Debian package.
declare -A wants=([redis-server]=redis-server [slapd]=slapd [slapadd]=slapd [ldapsearch]=ldap-utils [chromium]=chromium)
missing=()
for cmd in "${!wants[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${wants[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages first: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# npm dependencies: (re)install when missing or when the lockfile changed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm install` with the committed lockfile installs exactly its versions. (`npm ci` is refused
  # here: this npm leaves other platforms' optional packages out of the lockfile, then calls it
  # out of sync.)
  echo "setup: installing npm dependencies" >&2
  npm install --no-audit --no-fund --loglevel=error
fi
