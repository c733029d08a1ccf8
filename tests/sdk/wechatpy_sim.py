"""A real WeChat SDK (wechatpy) against wechat-sim, unchanged but for its API base URL settings.

wechatpy 1.8 hard-codes https://api.weixin.qq.com/cgi-bin/token in fetch_access_token, so the
access token it would fetch is fetched from the simulator's /cgi-bin/token and handed to the
client, which is one of its documented constructor arguments.
"""
import sys

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

APPID = "wx5f3c1b2a9d8e7f60"
SECRET = "0c6d2a1b9e8f7d6c5b4a39281706f5e4"

base = sys.argv[1].rstrip("/")
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def client():
    token = requests.get(
        f"{base}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
        timeout=10,
    ).json()["access_token"]
    c = WeChatClient(APPID, SECRET, access_token=token, timeout=10)
    c.API_BASE_URL = f"{base}/cgi-bin/"
    c.wxa.API_BASE_URL = f"{base}/"
    return c


login = requests.post(f"{base}/sim/login", json={"appid": APPID, "user": "sdk-user"}, timeout=10).json()
c = client()
res = c.wxa.code_to_session(login["code"])
check("code_to_session returns the openid", res.get("openid") == login["openid"], res)
check("code_to_session returns a 24-character session_key", len(res.get("session_key", "")) == 24, res)
check("no unionid for an app without open platform", "unionid" not in res, res)

try:
    c.wxa.code_to_session(login["code"])
    check("a used code raises", False)
except WeChatClientException as e:
    check("a used code raises WeChatClientException with errcode 40163", e.errcode == 40163, e)
    check("the errmsg carries WeChat's text and a rid", "code been used, rid: " in str(e.errmsg), e.errmsg)

try:
    c.wxa.code_to_session("0" * 32)
    check("an unknown code raises", False)
except WeChatClientException as e:
    check("an unknown code raises errcode 40029", e.errcode == 40029, e)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
