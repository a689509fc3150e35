#!/usr/bin/env bash
# Interoperability: tools that never saw this code accept our bundles and reject
# tampered ones. Installs pinned packages from PyPI and npm into a throw-away folder
# (package caches in the usual per-user places speed up later runs), writes bundles
# of three committed specs with the release binary, exports each attestation as a
# Sigstore bundle, and runs check.py (securesystemslib, in-toto-attestation,
# frictionless) and check.mjs (@sigstore/verify) on them.
#
#   .ci/interop/run.sh [BINARY]     (default: $CARGO_TARGET_DIR/release/outcome-audit)
#
# Needs python3 with the venv module, node >= 20.17 and npm. Exits non-zero if anything
# is rejected that should be accepted, or accepted that should be rejected.
set -euo pipefail

# The versions tested (docs/verify-without-us.md lists the same).
PIP_PACKAGES=(
  "securesystemslib[crypto]==1.6.0"
  "cryptography==50.0.2"
  "in-toto-attestation==0.9.3"
  "protobuf==7.36.2"
  "frictionless==5.21.0"
)
NPM_PACKAGES=(
  "@sigstore/verify@3.1.0"
  "@sigstore/bundle@4.0.0"
  "@sigstore/core@3.2.1"
  "@sigstore/protobuf-specs@0.5.2"
)
SPECS=(doncaster-cohort-1 predicted-vs-actual peterborough-cohort-1)

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/outcome-audit/target}/release/outcome-audit}"
[ -x "$bin" ] || { echo "interop: no binary at $bin (build with cargo build --release)" >&2; exit 2; }

started=$(date +%s)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Never touch a real signing key.
export OUTCOME_AUDIT_HOME="$work/home"

need() { command -v "$1" >/dev/null || { echo "interop: $1 is required ($2)" >&2; exit 2; }; }
need python3 "Debian: apt-get install python3 python3-venv"
need node "Debian: apt-get install nodejs npm"
need npm "Debian: apt-get install npm"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=17)?0:1)' ||
  { echo "interop: node >= 20.17 is required by @sigstore/verify 3.1.0 (found $(node --version))" >&2; exit 2; }

echo "== interop: installing ${PIP_PACKAGES[*]}"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}"

echo "== interop: installing ${NPM_PACKAGES[*]}"
mkdir "$work/npm"
(
  cd "$work/npm"
  echo '{"name":"outcome-audit-interop","private":true}' > package.json
  npm install --quiet --no-audit --no-fund --save-exact "${NPM_PACKAGES[@]}" 2>&1 |
    grep -v '^npm warn Unknown user config' || true
  for p in "${NPM_PACKAGES[@]}"; do
    name="${p%@*}"
    want="${p##*@}"
    got="$(node -p "JSON.parse(require('fs').readFileSync('node_modules/$name/package.json')).version")"
    [ "$got" = "$want" ] || { echo "interop: npm installed $name $got, not $want" >&2; exit 1; }
  done
)

for spec in "${SPECS[@]}"; do
  b="$work/bundles/$spec"
  echo "== interop: $spec"
  "$bin" run "$repo/audit-specs/$spec.toml" --out "$b" >/dev/null
  "$bin" export-sigstore "$b" --out "$work/$spec.sigstore.json"
  "$work/venv/bin/python" "$here/check.py" "$b"
  (cd "$work/npm" && node "$here/check.mjs" "$work/$spec.sigstore.json" "$b/signer.pub.pem")
done

echo "== interop: all outside tools agree ($(($(date +%s) - started)) s)"
