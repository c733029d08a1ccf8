"""Casdoor's Python SDK (casdoor==1.43.3), unchanged, against this server.

argv: endpoint, a mini program user's access token, that user's name.
"""
import base64
import sys
import textwrap

import requests
from casdoor import CasdoorSDK

endpoint, user_token, user_name = sys.argv[1], sys.argv[2], sys.argv[3]
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

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
