"""Proves onboard-sandbox accepts what Tencent's own Python SDK sends (TC3-HMAC-SHA256).

Usage: tc_sdk_check.py SANDBOX_URL   (e.g. http://127.0.0.1:8080)

Uses tencentcloud.common.common_client.CommonClient against the sandbox over plain http:
  * CreateAccount with an empty VerifyCode -> accepted (a code is texted, no Error);
  * GetCountryCodes -> accepted, Data non-empty;
  * the same call signed with a wrong SecretKey -> AuthFailure.SignatureFailure.
Credentials come from ONBOARD_TENCENTCLOUD__SECRET_ID / __SECRET_KEY, else the sandbox
defaults. Exits 0 on pass, 1 with a message otherwise.
"""

import json
import os
import random
import sys
from urllib.parse import urlparse

from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

SECRET_ID = os.environ.get("ONBOARD_TENCENTCLOUD__SECRET_ID", "AKIDsandboxsecretid")
SECRET_KEY = os.environ.get("ONBOARD_TENCENTCLOUD__SECRET_KEY", "sandbox-tc-secret-key")


def client(url, secret_key):
    parsed = urlparse(url)
    # The SDK defaults to https; protocol="http" sets HttpProfile.scheme, which the client
    # uses to build the URL. The endpoint is host:port and is also what goes in Host (signed).
    http = HttpProfile(protocol=parsed.scheme or "http", endpoint=parsed.netloc, reqMethod="POST", reqTimeout=10)
    profile = ClientProfile(httpProfile=http)
    cred = credential.Credential(SECRET_ID, secret_key)
    return CommonClient("intlpartnersmgt", "2022-09-28", cred, "", profile=profile)


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        fail("usage: tc_sdk_check.py SANDBOX_URL")
    url = sys.argv[1].rstrip("/")
    good = client(url, SECRET_KEY)

    phone = "9" + "".join(random.choice("0123456789") for _ in range(7))
    params = {
        "AccountType": "personal",
        "Mail": "sdk-check-%s@example.com" % phone,
        "Password": "Passw0rd!",
        "ConfirmPassword": "Passw0rd!",
        "PhoneNum": phone,
        "CountryCode": "852",
        "Area": "HK",
        "VerifyCode": "",
    }
    try:
        resp = good.call_json("CreateAccount", params)
    except TencentCloudSDKException as e:
        fail("CreateAccount (phase 1) refused: %s %s" % (e.code, e.message))
    body = resp.get("Response", {})
    if "Error" in body or "Uin" in body or not body.get("RequestId"):
        fail("CreateAccount (phase 1) answered unexpectedly: %s" % json.dumps(resp))
    print("ok: CreateAccount phase 1 accepted: %s" % json.dumps(resp))

    try:
        resp = good.call_json("GetCountryCodes", {})
    except TencentCloudSDKException as e:
        fail("GetCountryCodes refused: %s %s" % (e.code, e.message))
    data = resp.get("Response", {}).get("Data") or []
    if not any(d.get("IOS2") == "HK" for d in data):
        fail("GetCountryCodes answered unexpectedly: %s" % json.dumps(resp))
    print("ok: GetCountryCodes accepted (%d entries)" % len(data))

    bad = client(url, SECRET_KEY + "-wrong")
    try:
        resp = bad.call_json("GetCountryCodes", {})
        fail("a wrong SecretKey was accepted: %s" % json.dumps(resp))
    except TencentCloudSDKException as e:
        if e.code != "AuthFailure.SignatureFailure":
            fail("wrong SecretKey gave %s %s, expected AuthFailure.SignatureFailure" % (e.code, e.message))
    print("ok: wrong SecretKey refused with AuthFailure.SignatureFailure")
    print("PASS")


if __name__ == "__main__":
    main()
