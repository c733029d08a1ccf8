#!/usr/bin/env bash
# Runs wechatpy (from PyPI, in a throw-away virtual environment) against a real wechat-sim.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill -TERM "$sim_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "wechatpy[cryptography]==1.8.18" requests

cargo build -q -p wechat-sim --manifest-path "$root/Cargo.toml"
"$root/target/debug/wechat-sim" --addr 127.0.0.1:0 > "$work/sim.out" 2>&1 &
sim_pid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$work/sim.out" && break; sleep 0.1; done
addr="$(sed -n 's/.*listening on //p' "$work/sim.out" | head -n1)"
[ -n "$addr" ] || { cat "$work/sim.out"; echo "wechat-sim did not start"; exit 1; }

"$work/venv/bin/python" "$root/tests/sdk/wechatpy_sim.py" "http://$addr"
