#!/usr/bin/env bash
# The contract from outside: schemathesis fuzzes every operation of the checked-in OpenAPI spec
# against a live server, then Casdoor's Python and Node SDKs, unchanged, talk to it. Everything
# installs into throw-away directories.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "== installing schemathesis, casdoor (PyPI) and casdoor-nodejs-sdk (npm)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5" "casdoor==1.43.3" requests
(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund casdoor-nodejs-sdk@1.24.0 jose@6.2.18 >/dev/null)

cargo build -q -p iam-server -p wechat-sim --manifest-path "$root/Cargo.toml"

wait_for() { for _ in $(seq 1 200); do grep -q "listening on" "$1" && return 0; sleep 0.1; done; cat "$1"; return 1; }

"$root/target/debug/wechat-sim" --addr 127.0.0.1:0 > "$work/sim.out" 2>&1 &
pids+=($!)
wait_for "$work/sim.out"
sim="http://$(sed -n 's/.*listening on //p' "$work/sim.out" | head -n1)"

# The issuer is the configured origin (never a request's Host), so the port is chosen first.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/app.conf" <<CONF
httpaddr = 127.0.0.1
httpport = $port
origin = http://127.0.0.1:$port
driverName = sqlite
dataSourceName = $work/iam.db
initDataFile = $root/conf/init_data.json
wechatApiBase = $sim
tokenRateLimitPerIp = 0
sessionKeyFile = $work/session.key
CONF
(cd "$work" && IAM_ADMIN_PASSWORD=contract-admin IAM_LOG=warn,iam::serve=info exec "$root/target/debug/iam" --config "$work/app.conf" > "$work/iam.out" 2>&1) &
pids+=($!)
wait_for "$work/iam.out"
iam="http://$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$work/iam.out" | head -n1)"

json() { "$work/venv/bin/python" -c "import sys,json;print(json.load(sys.stdin)$1)"; }
# Global administrators sign in through app-built-in, whose client id the operator reads so:
builtin=$(cd "$work" && "$root/target/debug/iam" --config "$work/app.conf" app show-credentials app-built-in | sed -n 's/^clientId: *//p')
admin=$(curl -sf -X POST "$iam/oauth/token" -d "grant_type=password&client_id=$builtin&username=admin&password=contract-admin" | json '["access_token"]')
code=$(curl -sf -X POST "$sim/sim/login" -d '{"appid":"wx5f3c1b2a9d8e7f60","user":"sdk-user"}' | json '["code"]')
user_token=$(curl -sf -X POST "$iam/oauth/token" -d "tag=wechat_miniprogram&client_id=6825f4f0af45554c8952&code=$code&username=SDK" | json '["access_token"]')
user_name=$(curl -sf "$iam/api/get-account" -H "Authorization: Bearer $user_token" | json '["name"]')

echo "== Casdoor Python SDK 1.43.3"
"$work/venv/bin/python" "$root/tests/sdk/casdoor_py.py" "$iam" "$user_token" "$user_name" "$sim"
echo "== Casdoor Node SDK 1.24.0"
NODE_PATH="$work/node_modules" node "$root/tests/sdk/casdoor_node.js" "$iam" "$user_token" "$user_name"

echo "== signing-key rotation, checked by jose (npm) via discovery"
"$root/target/debug/iam" --config "$work/app.conf" cert rotate --cert cert-built-in
sleep 2.2   # the running server's 2 s cache of the application
code=$(curl -sf -X POST "$sim/sim/login" -d '{"appid":"wx5f3c1b2a9d8e7f60","user":"after-rotation"}' | json '["code"]')
rotated_token=$(curl -sf -X POST "$iam/oauth/token" -d "tag=wechat_miniprogram&client_id=6825f4f0af45554c8952&code=$code" | json '["access_token"]')
cp "$root/tests/sdk/jose_rotation.mjs" "$work/jose_rotation.mjs"
(cd "$work" && node jose_rotation.mjs "$iam" "$user_token" "$rotated_token" cert-built-in)

echo "== schemathesis against openapi/openapi.json"
# Objects of its own for the fuzzer to find and change, so it reaches past "not found" and
# "does not exist" into the rules, without touching what the SDK checks above used.
post() { curl -sf -X POST "$iam$1" -H "Authorization: Bearer $admin" -d "$2" >/dev/null; }
post /api/add-organization '{"name":"fuzz"}'
post /api/add-provider '{"owner":"admin","name":"fuzz-wx","category":"OAuth","type":"GitHub","clientId":"x","clientSecret":"y"}'
post /api/add-cert '{"name":"fuzz-cert"}'
post /api/add-application '{"name":"fuzz-app","organization":"fuzz","clientId":"fuzz0000000000000000","clientSecret":"fuzz-secret","providers":[{"name":"fuzz-wx"}]}'
post /api/add-user '{"owner":"fuzz","name":"fuzz-user","password":"fuzz-password"}'
# One password sign-in of the fuzzer's user, printing one field of the answer; and the session
# id (the `sid` claim) of an access token.
fuzz_sign_in() { curl -sf -X POST "$iam/oauth/token" -d "grant_type=password&client_id=fuzz0000000000000000&client_secret=fuzz-secret&username=fuzz-user&password=fuzz-password" | json "[\"$1\"]"; }
sid_of() { echo "$1" | cut -d. -f2 | "$work/venv/bin/python" -c 'import sys,json,base64;p=sys.stdin.read().strip();print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["sid"])'; }
# A refresh token is spent by its first use (and a second use ends its session), so the fuzzer
# gets several, each its own session: some for the token endpoint and its aliases, and some for
# Casdoor's refresh route, which comes after them and would otherwise find them all spent.
refresh=""; refresh_alias=""
for _ in $(seq 1 8); do
  refresh="$refresh\"$(fuzz_sign_in refresh_token)\", "
  refresh_alias="$refresh_alias\"$(fuzz_sign_in refresh_token)\", "
done
# The /api/wechat routes serve a mini program user: the fuzzer calls them as one of its own,
# with what WeChat would hand that user's mini program: wx.login() codes, getPhoneNumber
# codes, and data sealed under the session key of its sign-in (all one-time or short-lived,
# so several of each).
wx='"appid":"wx5f3c1b2a9d8e7f60","user":"fuzz-wx-user"'
code=$(curl -sf -X POST "$sim/sim/login" -d "{$wx}" | json '["code"]')
wx_user=$(curl -sf -X POST "$iam/oauth/token" -d "tag=wechat_miniprogram&client_id=6825f4f0af45554c8952&code=$code" | json '["access_token"]')
sealed=$(curl -sf -X POST "$sim/sim/encrypted-data" -d "{$wx,\"data\":{\"stepInfoList\":[]}}")
sealed_data=$(echo "$sealed" | json '["encryptedData"]')
sealed_iv=$(echo "$sealed" | json '["iv"]')
wx_codes=""; phone_codes=""
for i in $(seq 1 8); do
  c=$(curl -sf -X POST "$sim/sim/login" -d "{$wx}" | json '["code"]')
  wx_codes="$wx_codes\"$c\", "
  c=$(curl -sf -X POST "$sim/sim/phone-code" -d "{$wx,\"phone\":\"1390000000$i\"}" | json '["code"]')
  phone_codes="$phone_codes\"$c\", "
done
# Updates and deletes change what they are given, so they get objects of their own: a user
# whose password the fuzzer may set, an application it may rewrite, sessions it may end, and a
# user with a password beside a WeChat identity, so that identity may be unbound (a user's last
# way in may not).
post /api/add-user '{"owner":"fuzz","name":"fuzz-pw-user","password":"fuzz-password"}'
post /api/add-provider '{"owner":"admin","name":"fuzz-wx-2","category":"OAuth","type":"GitHub","clientId":"x","clientSecret":"y"}'
post /api/add-application '{"name":"fuzz-app-2","organization":"fuzz","clientId":"fuzz0000000000000002"}'
# Sessions for get-token and delete-token, and others revoke-session may end.
token_ids=""; sids=""
for _ in $(seq 1 4); do
  token_ids="$token_ids\"admin/$(sid_of "$(fuzz_sign_in access_token)")\", "
  sids="$sids\"$(sid_of "$(fuzz_sign_in access_token)")\", "
done
# A user update-user may change.
post /api/add-user '{"owner":"fuzz","name":"fuzz-upd-user","password":"fuzz-password"}'
code=$(curl -sf -X POST "$sim/sim/login" -d '{"appid":"wx5f3c1b2a9d8e7f60","user":"fuzz-unbind-user"}' | json '["code"]')
t=$(curl -sf -X POST "$iam/oauth/token" -d "tag=wechat_miniprogram&client_id=6825f4f0af45554c8952&code=$code" | json '["access_token"]')
unbind_name=$(curl -sf "$iam/api/get-account" -H "Authorization: Bearer $t" | json '["name"]')
post /api/set-password "{\"userOwner\":\"demo\",\"userName\":\"$unbind_name\",\"newPassword\":\"fuzz-password-2\"}"
cat > "$work/schemathesis.toml" <<TOML
# Values the server knows, offered to the fuzzer part of the time (the rest stays random).
[dictionaries.ids]
values = ["admin/fuzz", "admin/fuzz-app", "admin/fuzz-wx", "admin/fuzz-cert", "fuzz/fuzz-user"]
[dictionaries.client_ids]
values = ["fuzz0000000000000000"]
[dictionaries.client_secrets]
values = ["fuzz-secret"]
[dictionaries.grant_types]
values = ["client_credentials", "password", "refresh_token"]
[dictionaries.usernames]
values = ["fuzz-user"]
[dictionaries.passwords]
values = ["fuzz-password"]
[dictionaries.refresh_tokens]
values = [$refresh]
[dictionaries.refresh_tokens_alias]
values = [$refresh_alias]
[dictionaries.wx_codes]
values = [$wx_codes]
[dictionaries.phone_codes]
values = [$phone_codes]
[dictionaries.sealed_data]
values = ["$sealed_data"]
[dictionaries.sealed_iv]
values = ["$sealed_iv"]
[dictionaries.wx_providers]
values = ["provider_wechat_miniprogram"]
[dictionaries.wx_appids]
values = ["wx5f3c1b2a9d8e7f60"]
[dictionaries.app_names]
values = ["fuzz-app-2"]
[dictionaries.app_client_ids]
values = ["fuzz0000000000000002"]
[dictionaries.provider_names]
values = ["fuzz-wx"]
[dictionaries.admin_owner]
values = ["admin"]
[dictionaries.provider_names_to_change]
values = ["fuzz-wx-2"]
[dictionaries.cert_names]
values = ["fuzz-cert"]
[dictionaries.organizations]
values = ["fuzz"]
[dictionaries.token_ids]
values = [$token_ids]
[dictionaries.sids]
values = [$sids]
[dictionaries.session_users]
values = ["fuzz/fuzz-user"]
[dictionaries.revoke_users]
values = ["fuzz/fuzz-pw-user"]
[dictionaries.upd_users]
values = ["fuzz/fuzz-upd-user"]
[dictionaries.upd_user_names]
values = ["fuzz-upd-user"]
[dictionaries.unbind_users]
values = ["demo/$unbind_name"]

[headers]
Authorization = "Bearer $admin"

# The schemas state the rules the server enforces, so the fuzzer's valid requests get past
# validation: an operation that refuses most of them with a 400 fails the run.
[warnings]
fail-on = ["validation_mismatch"]

# Operations whose valid requests need a one-time code, a sealed payload, a password or the
# caller's own old password: the coverage phase builds its requests from the schema alone, so it
# sends them only its negative cases; the fuzzing phase, which draws from the values above, sends
# both.
[[operations]]
include-path-regex = "^/api/(wechat/(bind|bind-phone|decrypt)|check-user-password|set-password|login/oauth/refresh_token)$"
phases = { coverage = { generation = { mode = "negative" } } }

# The token endpoint and its aliases take four request shapes, one per grant, and one of them
# (the mini program's) needs a one-time code, and the fuzzing phase spends most of its cases on
# bodies of no shape at all: more cases, so each shape gets valid ones.
[[operations]]
include-path-regex = "^/(oauth/token|oauth/access_token|login/oauth/access_token|api/login/oauth/access_token)$"
phases = { fuzzing = { generation = { max-examples = 150 } } }

# Objects to update: the fuzzer's own, named in the body (a rename is refused); an
# application and a provider apart from those the token routes use, since an update replaces
# an object whole (a provider made a mini program with an APPID WeChat does not know is, as
# SPEC §4 says, a 500 for every sign-in through it). New applications mostly clash with
# names and client ids already taken (a 409): more cases, so some are new.
[[operations]]
include-path = "/api/update-organization"
parameters = { "body.name" = { dictionary = "organizations", probability = 0.7 } }
[[operations]]
include-path = "/api/update-application"
parameters = { "body.name" = { dictionary = "app_names", probability = 0.7 }, "body.organization" = { dictionary = "organizations", probability = 0.7 }, "body.clientId" = { dictionary = "app_client_ids", probability = 0.8 }, "body.providers[*].name" = { dictionary = "provider_names", probability = 0.8 } }
[[operations]]
include-path = "/api/add-application"
phases = { fuzzing = { generation = { max-examples = 200 } } }
parameters = { "body.organization" = { dictionary = "organizations", probability = 0.8 }, "body.providers[*].name" = { dictionary = "provider_names", probability = 0.8 }, "body.providers[*].owner" = { dictionary = "admin_owner", probability = 0.8 }, "body.cert" = { dictionary = "cert_names", probability = 0.7 } }
[[operations]]
include-path = "/api/update-provider"
parameters = { "body.name" = { dictionary = "provider_names_to_change", probability = 0.7 } }
[[operations]]
include-path = "/api/update-cert"
parameters = { "body.name" = { dictionary = "cert_names", probability = 0.7 } }
[[operations]]
include-path = "/api/set-password"
parameters = { "body.userOwner" = "fuzz", "body.userName" = "fuzz-pw-user", "body.newPassword" = { dictionary = "passwords", probability = 0.8 } }
[[operations]]
include-path-regex = "^/api/(get|delete)-token$"
parameters = { "query.id" = { dictionary = "token_ids", probability = 0.7 } }
[[operations]]
include-path = "/api/revoke-session"
parameters = { "query.sid" = { dictionary = "sids", probability = 0.7 } }
[[operations]]
include-path = "/api/get-user-sessions"
parameters = { "query.id" = { dictionary = "session_users", probability = 0.7 } }
[[operations]]
include-path = "/api/delete-session"
parameters = { "query.id" = { dictionary = "session_users", probability = 0.7 }, "body.owner" = { dictionary = "organizations", probability = 0.7 }, "body.name" = { dictionary = "usernames", probability = 0.7 } }
[[operations]]
include-path = "/api/revoke-user-sessions"
parameters = { "query.id" = { dictionary = "revoke_users", probability = 0.7 } }
[[operations]]
include-path = "/api/update-user"
parameters = { "query.id" = { dictionary = "upd_users", probability = 0.7 }, "body.owner" = { dictionary = "organizations", probability = 0.7 }, "body.name" = { dictionary = "upd_user_names", probability = 0.7 } }
[[operations]]
include-path = "/api/wechat/unbind"
headers = { Authorization = "Bearer $admin" }
parameters = { "query.id" = { dictionary = "unbind_users", probability = 0.8 }, "body.appid" = { dictionary = "wx_appids", probability = 0.8 } }

[[operations]]
include-path-regex = "^/api/wechat/"
headers = { Authorization = "Bearer $wx_user" }
parameters = { "body.code" = { dictionary = "wx_codes", probability = 0.8 }, "body.phoneCode" = { dictionary = "phone_codes", probability = 0.8 }, "body.encryptedData" = { dictionary = "sealed_data", probability = 0.8 }, "body.iv" = { dictionary = "sealed_iv", probability = 0.8 }, "query.provider" = { dictionary = "wx_providers", probability = 0.8 }, "body.provider" = { dictionary = "wx_providers", probability = 0.8 }, "body.appid" = { dictionary = "wx_appids", probability = 0.8 } }

[[operations]]
include-path = "/api/login/oauth/refresh_token"
parameters = { "body.refresh_token" = { dictionary = "refresh_tokens_alias", probability = 0.8 }, "body.client_id" = { dictionary = "client_ids", probability = 0.8 }, "body.client_secret" = { dictionary = "client_secrets", probability = 0.8 } }

[[operations]]
include-path = "/api/check-user-password"
parameters = { "body.name" = { dictionary = "usernames", probability = 0.8 } }

# Every other operation that takes an id gets the fuzzer's objects. The updates above name
# theirs in the body instead, which an id would have to agree with. (A block's parameters
# replace the others' and the first block that applies wins, so this one comes last.)
[[operations]]
include-path-regex = "^/api/(?!update-(organization|application|provider|cert|user)$)"
parameters = { "query.id" = { dictionary = "ids", probability = 0.7 } }

[parameters]
"query.owner" = { dictionary = "organizations", probability = 0.7 }
"query.organization" = { dictionary = "organizations", probability = 0.7 }
"body.client_id" = { dictionary = "client_ids", probability = 0.8 }
"body.client_secret" = { dictionary = "client_secrets", probability = 0.8 }
"body.grant_type" = { dictionary = "grant_types", probability = 0.8 }
"body.username" = { dictionary = "usernames", probability = 0.8 }
"body.password" = { dictionary = "passwords", probability = 0.8 }
"body.refresh_token" = { dictionary = "refresh_tokens", probability = 0.8 }
"body.organization" = { dictionary = "organizations", probability = 0.7 }
"body.owner" = { dictionary = "organizations", probability = 0.7 }
TOML
# sso-logout with the fuzzer's token would end the administrator's own session, and every
# operation after it would see only 401s; the e2e tests and the Casdoor SDK above cover it.
# The delete-* routes run last, in a run of their own: the fuzzer feeds them names that other
# answers held, and the operations that sign in, update or call as a mini program user need
# those objects to still exist.
fuzz() {
  (cd "$work" && "$work/venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$root/openapi/openapi.json" \
    --url "$iam" --exclude-path /api/sso-logout "$@" \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance)
}
fuzz --exclude-path-regex '^/api/delete-'
fuzz --include-path-regex '^/api/delete-'
if grep -qiE "panicked|\"level\":\"ERROR\"| ERROR " "$work/iam.out"; then
  echo "the server logged errors during the run:"; grep -iE "panicked|ERROR" "$work/iam.out" | head -20; exit 1
fi
