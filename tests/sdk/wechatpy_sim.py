"""A real WeChat SDK (wechatpy) against wechat-sim, unchanged but for its API base URL settings.

wechatpy 1.8 hard-codes https://api.weixin.qq.com/cgi-bin/token in fetch_access_token, so the
access token it would fetch is fetched from the simulator's /cgi-bin/token and handed to the
client, which is one of its documented constructor arguments.
"""
import hashlib
import hmac
import sys

import requests
from wechatpy import WeChatClient
from wechatpy.crypto import WeChatWxaCrypto
from wechatpy.exceptions import InvalidAppIdException, WeChatClientException

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

# The phone-number button (SPEC §8): wechatpy 1.8 has no wrapper for getuserphonenumber, so
# its generic request method calls it (access token, JSON body and errcode handling are the
# SDK's own).
login = requests.post(f"{base}/sim/login", json={"appid": APPID, "user": "sdk-phone"}, timeout=10).json()
session = c.wxa.code_to_session(login["code"])
phone_code = requests.post(
    f"{base}/sim/phone-code",
    json={"appid": APPID, "user": "sdk-phone", "phone": "13800138000"},
    timeout=10,
).json()["code"]
res = c.post(f"{base}/wxa/business/getuserphonenumber", data={"code": phone_code, "openid": login["openid"]})
info = res.get("phone_info", {})
check("getuserphonenumber returns the number", info.get("purePhoneNumber") == "13800138000", res)
check("countryCode is a string", info.get("countryCode") == "86", res)
check("the watermark names the app", info.get("watermark", {}).get("appid") == APPID, res)
try:
    c.post(f"{base}/wxa/business/getuserphonenumber", data={"code": phone_code, "openid": login["openid"]})
    check("a used phone code raises", False)
except WeChatClientException as e:
    check("a used phone code raises errcode 40029", e.errcode == 40029, e)
other = requests.post(
    f"{base}/sim/phone-code",
    json={"appid": APPID, "user": "someone-else", "phone": "13900139000"},
    timeout=10,
).json()["code"]
try:
    c.post(f"{base}/wxa/business/getuserphonenumber", data={"code": other, "openid": login["openid"]})
    check("another user's phone code raises", False)
except WeChatClientException as e:
    check("another user's phone code raises errcode 40029", e.errcode == 40029, e)

# The legacy encrypted data, opened by wechatpy's WXBizDataCrypt (WeChatWxaCrypto) with the
# session key code_to_session gave.
sealed = requests.post(
    f"{base}/sim/encrypted-data",
    json={"appid": APPID, "user": "sdk-phone",
          "data": {"phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": "86"}},
    timeout=10,
).json()
plain = WeChatWxaCrypto(session["session_key"], sealed["iv"], APPID).decrypt_message(sealed["encryptedData"])
check("WeChatWxaCrypto opens the simulator's encryptedData", plain.get("purePhoneNumber") == "13800138000", plain)
check("with WeChat's watermark", plain.get("watermark", {}).get("appid") == APPID, plain)
try:
    WeChatWxaCrypto(session["session_key"], sealed["iv"], "wx0000000000000000").decrypt_message(sealed["encryptedData"])
    check("another appid is refused", False)
except InvalidAppIdException:
    check("another appid is refused with InvalidAppIdException", True)

# checkSessionKey, signed as WeChat documents it, through the SDK's request method.
def signature(key):
    return hmac.new(key.encode(), b"", hashlib.sha256).hexdigest()

res = c.get(f"{base}/wxa/checksession",
            params={"openid": login["openid"], "signature": signature(session["session_key"]), "sig_method": "hmac_sha256"})
check("checksession accepts the current key", res.get("errcode") == 0, res)
try:
    c.get(f"{base}/wxa/checksession",
          params={"openid": login["openid"], "signature": signature("AAAAAAAAAAAAAAAAAAAAAA=="), "sig_method": "hmac_sha256"})
    check("checksession refuses another key", False)
except WeChatClientException as e:
    check("checksession refuses another key with errcode 87009", e.errcode == 87009, e)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
