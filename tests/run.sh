#!/usr/bin/env bash
# The whole test suite: unit, contract (real services), end-to-end, static checks, Deno.
# Installs what it needs first. Ends with the line `N passed, N failed, N skipped`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/dev/setup.sh
exec ./node_modules/.bin/vitest run "$@"
