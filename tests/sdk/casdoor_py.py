"""Casdoor's Python SDK (casdoor==1.43.3), unchanged, against this server.

argv: endpoint, a mini program user's access token, that user's name, wechat-sim's endpoint.
"""
import base64
import sys
import textwrap

import requests
from casdoor import CasdoorSDK

endpoint, user_token, user_name, sim = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
CLIENT_ID, CLIENT_SECRET = "6825f4f0af45554c8952", "b8a2f1c9d4e7a6b5c3d2e1f0a9b8c7d6e5f4a3b2"
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


# The certificate, as an operator would take it from the JWKS (x5c).
jwks = requests.get(f"{endpoint}/.well-known/jwks", timeout=10).json()
x5c = jwks["keys"][0]["x5c"][0]
certificate = "-----BEGIN CERTIFICATE-----\n" + "\n".join(textwrap.wrap(x5c, 64)) + "\n-----END CERTIFICATE-----\n"

sdk = CasdoorSDK(endpoint, CLIENT_ID, CLIENT_SECRET, certificate, "demo", "demo-miniprogram")

token = sdk.get_oauth_token()
check("client_credentials token", "access_token" in token, token)
claims = sdk.parse_jwt_token(token["access_token"])
check("parse_jwt_token of the application token", claims.get("azp") == CLIENT_ID, claims)

claims = sdk.parse_jwt_token(user_token)
check("parse_jwt_token of the mini program user's token", claims.get("name") == user_name, claims)

user = sdk.get_user(user_name)
check("get_user", user is not None and user.name == user_name, user)
check("get_user of a missing user is None", sdk.get_user("nobody-here") is None)

user.displayName = "Set by the Python SDK"
resp = sdk.update_user(user)
check("update_user (no Content-Type, every field)", resp.get("status") == "ok" and resp.get("data") == "Affected", resp)
check("the new displayName is stored", sdk.get_user(user_name).displayName == "Set by the Python SDK")

user.displayName = "Columns only"
resp = sdk.update_user_for_columns(user, ["displayName"])
check("update_user_for_columns", resp.get("data") == "Affected", resp)

account = sdk.with_access_token(user_token).get_account()
check("get_account with the user's token", account.name == user_name and account.displayName == "Columns only", account)



def sign_in(who):
    """A fresh mini program session of `who`, as wx.login() and the product page make one."""
    code = requests.post(f"{sim}/sim/login", json={"appid": "wx5f3c1b2a9d8e7f60", "user": who}, timeout=10).json()["code"]
    form = {"tag": "wechat_miniprogram", "client_id": CLIENT_ID, "code": code}
    return requests.post(f"{endpoint}/oauth/token", data=form, timeout=10).json()["access_token"]


def works(token):
    return requests.get(f"{endpoint}/api/get-account", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200


# Sessions (SPEC §9), in Casdoor's shapes.
sessions = sdk.get_sessions()
mine = [x for x in sessions if x.name == user_name]
check("get_sessions lists the user's sessions", len(mine) == 1 and len(mine[0].sessionId) >= 1, [str(x) for x in sessions])
page, total = sdk.get_pagination_sessions(1, 1)
check("get_pagination_sessions", len(page) == 1 and total >= 1, (page, total))

first, second = sign_in("sdk-session"), sign_in("sdk-session")
tokens = sdk.get_tokens(1, 100)
check("get_tokens lists sessions without token values", len(tokens) >= 3 and all(not t.accessToken for t in tokens), [str(t) for t in tokens])
sid = sdk.parse_jwt_token(first)["sid"]
token = sdk.get_token(sid)
check("get_token", token.name == sid and token.organization == "demo", token)
resp = sdk.delete_token(token)
check("delete_token ends the session", resp.get("data") == "Affected" and not works(first) and works(second), resp)

resp = sdk.logout_current_session(second)
check("sso-logout (this session)", resp.get("status") == "ok" and not works(second), resp)
third, fourth = sign_in("sdk-session"), sign_in("sdk-session")
resp = sdk.logout(third)
check("sso-logout (every session)", resp.get("status") == "ok" and not works(third) and not works(fourth), resp)

fifth = sign_in("sdk-session")
name = sdk.parse_jwt_token(fifth)["name"]
group = [x for x in sdk.get_sessions() if x.name == name]
resp = sdk.delete_session(group[0]) if group else {}
check("delete_session ends the user's sessions", resp.get("data") == "Affected" and not works(fifth), resp)
check("the first user's session is untouched", works(user_token))

# Finding users and reading records (SPEC §10), as the SDK's own tests call them.
page, total = sdk.get_pagination_users(1, 2, {"sortField": "createdTime", "sortOrder": "ascend"})
check("get_pagination_users: a page and the total", len(page) == 2 and total >= 2, (page, total))
found, n = sdk.get_pagination_users(1, 10, {"field": "name", "value": user_name})
check("get_pagination_users searches by name", n == 1 and found[0].name == user_name, (found, n))
check("get_user_count", sdk.get_user_count() == total, (sdk.get_user_count(), total))
check("get_user_count(is_online=False) is accepted", sdk.get_user_count(False) == total)
check("get_sorted_users", len(sdk.get_sorted_users("created_time", "2")) == 2)

from casdoor.record import Record

note = Record()
note.action = "sdk-support-note"
note.object = f"demo/{user_name}"
resp = sdk.add_record(note)
check("add_record", resp.get("status") == "ok", resp)
added = resp.get("data2") or {}
records, n = sdk.get_pagination_records(1, 5, {"field": "action", "value": "sdk-support-note"})
check("get_pagination_records finds it", n == 1 and records[0].action == "sdk-support-note", (records, n))
check("get_record by name", sdk.get_record(added.get("name", "")) is not None)
records, n = sdk.get_pagination_records(1, 3, {"sortField": "createdTime", "sortOrder": "descend"})
check("get_pagination_records pages with a total", len(records) == 3 and n >= 3, (records, n))
check("sign-ins are recorded", any(r.action.startswith("signin") for r in sdk.get_pagination_records(1, 50)[0]))

# Passwords (SPEC §12): set_password posts a multipart form, check_user_password a JSON user.
from casdoor.user import User

pw_user = User()
pw_user.owner, pw_user.name, pw_user.password = "demo", "sdk-password-user", "first-pass-1"
check("add_user with a password", sdk.add_user(pw_user).get("status") == "ok")
try:
    changed = sdk.set_password("demo", "sdk-password-user", "", "second-pass-2")
except Exception as e:  # the SDK raises on a status other than "ok"
    changed = f"refused: {e}"
check("set_password (multipart; the organization's application needs no old password)", changed is True, changed)
pw_user.password = "second-pass-2"
check("check_user_password, the right one", sdk.check_user_password(pw_user) is True)
pw_user.password = "not-it"
check("check_user_password, a wrong one", sdk.check_user_password(pw_user) is False)
try:
    sdk.set_password("demo", "sdk-password-user", "", "123")
    short = "accepted"
except Exception as e:
    short = str(e)
check("set_password refuses what the organization's rules refuse", "at least 6" in short, short)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
