#!/usr/bin/env bash
# The console in a real browser: installs what it needs (Debian's chromium, the npm packages of
# package-lock.json), starts wechat-sim and iam on free ports with a fresh SQLite database, and
# runs console.mjs. Screenshots land in target/browser-artifacts/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tests/browser"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd "$here" && npm ci --no-audit --no-fund --silent)

cargo build -q -p wechat-sim -p iam-server --manifest-path "$root/Cargo.toml"

appid=wx0123456789abcdef
appsecret=00112233445566778899aabbccddeeff
"$root/target/debug/wechat-sim" --addr 127.0.0.1:0 --app "$appid:$appsecret" > "$work/sim.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "listening on" "$work/sim.out" && break; sleep 0.1; done
sim="$(sed -n 's/.*listening on //p' "$work/sim.out" | head -n1)"
[ -n "$sim" ] || { cat "$work/sim.out"; echo "wechat-sim did not start"; exit 1; }

password="browser-admin-password"
# The issuer (and the snippet the console shows) is the configured origin, never a request's
# Host, so the port is chosen first.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# exec: the pid cleanup() stops is iam's own, not a subshell's that would leave iam running.
(cd "$work" && exec env IAM_ADMIN_PASSWORD="$password" httpaddr=127.0.0.1 httpport="$port" \
  origin="http://127.0.0.1:$port" \
  dataSourceName="$work/iam.db" sessionKeyFile="$work/key" wechatApiBase="http://$sim" \
  initDataFile="$root/conf/init_data.json" \
  "$root/target/debug/iam" --config "$root/conf/app.conf" > "$work/iam.out" 2>&1) &
pids+=($!)
for _ in $(seq 1 300); do grep -q "listening on" "$work/iam.out" && break; sleep 0.1; done
iam="$(grep -o 'listening on [0-9.:]*' "$work/iam.out" | head -n1 | sed 's/listening on //')"
[ -n "$iam" ] || { cat "$work/iam.out"; echo "iam did not start"; exit 1; }

IAM_BASE="http://$iam" SIM_BASE="http://$sim" ADMIN_PASSWORD="$password" \
  CONSOLE_APPID="$appid" CONSOLE_APPSECRET="$appsecret" \
  ARTIFACTS="$root/target/browser-artifacts" node "$here/console.mjs" \
  || { echo "== iam's log"; tail -n 40 "$work/iam.out"; exit 1; }
