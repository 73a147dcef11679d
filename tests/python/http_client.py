"""The HTTP API from Python (requests), end to end against onboard-producer serve, the
sandbox and a worker: all four job kinds followed to the end over server-sent events, the
verify-code flow, a batch upload, idempotency, and every error status in the one shape.

Also a webhook: a receiver on HOOK_PORT gets the terminal state of a job the HOOK_TOKEN
enqueued, signed with HOOK_SECRET.

Usage: http_client.py API_URL SANDBOX_URL APP_TOKEN OPS_TOKEN SLOW_TOKEN HOOK_TOKEN HOOK_PORT HOOK_SECRET
(run by tests/tests/http_api.rs through tests/python/http_run.sh).
"""

import hashlib
import hmac
import http.server
import json
import queue
import sys
import threading

import requests

API, SANDBOX, APP, OPS, SLOW, HOOK, HOOK_PORT, HOOK_SECRET = sys.argv[1:9]
TIMEOUT = 30
checks = {"passed": 0, "failed": 0}


def check(ok, what):
    if ok:
        checks["passed"] += 1
    else:
        checks["failed"] += 1
        print(f"FAILED: {what}", file=sys.stderr)


def call(method, path, token=None, **kw):
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, API + path, headers=headers, timeout=TIMEOUT, **kw)


def error_is(resp, status, code):
    try:
        err = resp.json()["error"]
    except (ValueError, KeyError):
        check(False, f"{resp.status_code} {resp.text!r} is not the error shape")
        return {}
    check(resp.status_code == status, f"status {resp.status_code} != {status}: {resp.text}")
    check(err.get("code") == code, f"code {err.get('code')} != {code}")
    check(isinstance(err.get("message"), str) and err["message"], "a message")
    check("field" in err, "a field member")
    return err


def events(job_id):
    """Yields (name, data) until the server ends the stream."""
    with call("GET", f"/v1/jobs/{job_id}/events", APP, stream=True) as resp:
        check(resp.status_code == 200, f"events: {resp.status_code}")
        name, data = None, []
        for line in resp.iter_lines(decode_unicode=True):
            if line == "":
                if name:
                    yield name, json.loads("".join(data))
                name, data = None, []
            elif line.startswith("event:"):
                name = line[len("event:"):].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:"):].strip())


def end_state(job_id, on_awaiting=None):
    """Follows a job to its end; calls on_awaiting(job_id) when it awaits a code."""
    last = None
    for name, data in events(job_id):
        state = data["state"] if name == "status" else name
        if state == "awaiting_code" and on_awaiting and last != "awaiting_code":
            on_awaiting(job_id)
        last = state
    return last


def enqueue(kind, body, token=APP, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    resp = call("POST", f"/v1/jobs/{kind}", token, json=body, headers=headers)
    check(resp.status_code in (200, 202), f"enqueue {kind}: {resp.status_code} {resp.text}")
    return resp


def supply_code(job_id):
    sms = requests.get(f"{SANDBOX}/_sandbox/sms", params={"phone": "85255507777"}, timeout=TIMEOUT)
    code = sms.json()["latest"]
    resp = call("POST", f"/v1/jobs/{job_id}/verify-code", APP, json={"code": code})
    check(resp.status_code == 200 and resp.json()["state"] == "queued", f"verify-code: {resp.text}")


def all_four_kinds():
    customer = {"customer_id": "py_1", "country_code": "+852", "phone_number": "55501001"}
    cust = enqueue("create-customer", customer).json()["id"]
    check(end_state(cust) == "succeeded", "create-customer succeeded")
    devices = {"customer_id": "py_1", "devices": [
        {"customer_device_no": "d1", "device_id": "P1/d1", "product_name": "lamp"}]}
    bind = enqueue("bind-devices", devices).json()["id"]
    check(end_state(bind) == "succeeded", "bind-devices succeeded")
    user = {"email": "py@example.com", "mobile": "13800000077", "passwd": "py-pass-1",
            "name": "Py"}
    reg = enqueue("register-user", user).json()["id"]
    check(end_state(reg) == "succeeded", "register-user succeeded")
    got = call("GET", f"/v1/jobs/{reg}", APP).json()
    check(got["state"] == "succeeded" and "py-pass-1" not in json.dumps(got), "status, no secret")
    account = {"account_type": "personal", "mail": "py@example.com", "password": "Passw0rd!x",
               "phone_num": "55507777", "country_code": "852", "area": "HK"}
    acct = enqueue("create-account", account).json()["id"]
    check(end_state(acct, on_awaiting=supply_code) == "succeeded", "create-account succeeded")


def idempotency_and_batches():
    body = {"customer_id": "py_2", "country_code": "852", "phone_number": "55501002"}
    first = enqueue("create-customer", body, key="py-key")
    check(first.status_code == 202, "first enqueue 202")
    again = enqueue("create-customer", body, key="py-key")
    check(again.status_code == 200 and again.json()["id"] == first.json()["id"], "repeat 200")
    body["phone_number"] = "55501003"
    conflict = call("POST", "/v1/jobs/create-customer", APP, json=body,
                    headers={"Idempotency-Key": "py-key"})
    err = error_is(conflict, 409, "conflict")
    check(err.get("first_id") == first.json()["id"], "409 names the first job")
    lines = "\n".join(json.dumps({"customer_id": f"pyb_{i}", "country_code": "852",
                                  "phone_number": f"5550{i:04}"}) for i in range(20))
    up = call("POST", "/v1/batches?kind=create-customer", APP, data=lines,
              headers={"Content-Type": "application/x-ndjson"})
    check(up.status_code == 202 and up.json()["new_jobs"] == 20, f"batch: {up.text}")
    bad = call("POST", "/v1/batches?kind=create-customer", APP,
               data=lines + "\n{\"customer_id\": \"x\"}\n")
    err = error_is(bad, 422, "invalid")
    check([e["line"] for e in err.get("errors", [])] == [21], f"422 names line 21: {err}")


def error_statuses():
    error_is(call("GET", "/v1/jobs/cust_x"), 401, "unauthenticated")
    error_is(call("GET", "/v1/stats", APP), 403, "forbidden")
    error_is(call("GET", "/v1/jobs/cust_01M8VP800XBHSS2NJCVMYZDM3G", APP), 404, "not_found")
    big = {"customer_id": "x" * 10000}
    error_is(call("POST", "/v1/jobs/create-customer", APP, json=big), 413, "payload_too_large")
    err = error_is(call("POST", "/v1/jobs/create-customer", APP, json={"customer_id": "py 3"}),
                   422, "invalid")
    check(err.get("field") in ("customer_id", "country_code", "phone_number"), f"field: {err}")
    limited = None
    for _ in range(10):
        resp = call("GET", "/v1/jobs/cust_x", SLOW)
        if resp.status_code == 429:
            limited = resp
            break
    check(limited is not None, "429 past the slow token's rate")
    if limited is not None:
        error_is(limited, 429, "rate_limited")
        check(int(limited.headers.get("Retry-After", "0")) >= 1, "Retry-After")
    check(call("GET", "/v1/stats", OPS).status_code == 200, "operator reads stats")
    doc = call("GET", "/v1/openapi.json").json()
    check(doc["openapi"].startswith("3.1") and "/v1/batches" in doc["paths"], "openapi")


def webhook():
    received = queue.Queue()

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((self.headers, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", int(HOOK_PORT)), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        body = {"customer_id": "py_hook", "country_code": "852", "phone_number": "55501077"}
        job = enqueue("create-customer", body, token=HOOK).json()["id"]
        headers, raw = received.get(timeout=TIMEOUT)
        t, v1 = headers["Onboard-Signature"].removeprefix("t=").split(",v1=")
        expected = hmac.new(HOOK_SECRET.encode(), f"{t}.".encode() + raw, hashlib.sha256)
        check(hmac.compare_digest(expected.hexdigest(), v1), "webhook signature")
        event = json.loads(raw)
        check(event["id"] == headers["Onboard-Event-Id"] and event["id"].startswith("evt_"),
              f"event id: {event}")
        check(event["type"] == "job.succeeded" and event["data"]["job_id"] == job,
              f"webhook event: {event}")
    finally:
        server.shutdown()


all_four_kinds()
webhook()
idempotency_and_batches()
error_statuses()
print(f"python http client: {checks['passed']} passed, {checks['failed']} failed")
sys.exit(1 if checks["failed"] else 0)
