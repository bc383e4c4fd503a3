"""Signs deliveries with the providers' own libraries and posts them to the
receiver that tests/provider_libraries.rs starts on 127.0.0.1.

    python3 tests/py/deliver.py <base URL>

Exits non-zero, saying why, when a library is missing, a delivery is not
answered 2xx, or a handshake answer is wrong. Secrets and seeds are the ones
the Rust test configures.
"""

import base64
import hashlib
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

import nacl.signing
from slack_sdk.signature import SignatureVerifier
from standardwebhooks import Webhook
from twilio.request_validator import RequestValidator

SLACK_SECRET = "slack-e2e-signing-secret"
TWILIO_TOKEN = "twilio-e2e-auth-token"
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STANDARD_SEED = bytes([7] * 32)
DISCORD_SEED = bytes([9] * 32)

failures = []


def post(url, body, headers, content_type="application/json"):
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", content_type)
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def expect(name, answer, body=None):
    status, text = answer
    ok = 200 <= status < 300 and (body is None or text == body)
    print(f"{name}: {status} {text}")
    if not ok:
        failures.append(f"{name}: {status} {text} (expected 2xx {body or ''})")


def slack(base):
    verifier = SignatureVerifier(SLACK_SECRET)
    ts = str(int(time.time()))
    body = json.dumps({"type": "event_callback", "event_id": "Ev0E2E", "team_id": "T1",
                       "event": {"type": "app_mention", "text": "hi <@U1> é"}})
    headers = {"X-Slack-Request-Timestamp": ts,
               "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body)}
    expect("slack event", post(base + "/slack", body.encode(), headers))
    challenge = json.dumps({"token": "t", "challenge": "e2e-challenge", "type": "url_verification"})
    headers = {"X-Slack-Request-Timestamp": ts,
               "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=challenge)}
    expect("slack url_verification", post(base + "/slack", challenge.encode(), headers),
           json.dumps({"challenge": "e2e-challenge"}, separators=(",", ":")))


def twilio(base):
    validator = RequestValidator(TWILIO_TOKEN)
    url = base + "/twilio?tenant=e2e"
    params = {"MessageSid": "SM0e2e", "MessageStatus": "delivered", "AccountSid": "AC1",
              "Body": "Hello & welcome, 100% ✓", "To": "+15005550006"}
    body = urllib.parse.urlencode(params).encode()
    headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
    expect("twilio form", post(url, body, headers, "application/x-www-form-urlencoded"))
    json_body = json.dumps({"ProfileSid": "1", "Status": "ok"})
    digest = hashlib.sha256(json_body.encode()).hexdigest()
    json_url = base + "/twilio?bodySHA256=" + digest
    headers = {"X-Twilio-Signature": validator.compute_signature(json_url, {})}
    assert validator.validate(json_url, json_body, headers["X-Twilio-Signature"])
    expect("twilio json", post(json_url, json_body.encode(), headers))


def standard(base):
    now = datetime.now(tz=timezone.utc)
    body = json.dumps({"type": "invoice.paid", "data": {"id": "in_1"}})
    headers = {"webhook-id": "msg_e2e_v1", "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(STANDARD_SECRET).sign("msg_e2e_v1", now, body)}
    expect("standard v1", post(base + "/standard", body.encode(), headers))
    # v1a: the specification's asymmetric version, signed with PyNaCl.
    ts = str(int(time.time()))
    signed = f"msg_e2e_v1a.{ts}.{body}".encode()
    signature = nacl.signing.SigningKey(STANDARD_SEED).sign(signed).signature
    headers = {"webhook-id": "msg_e2e_v1a", "webhook-timestamp": ts,
               "webhook-signature": "v1a," + base64.b64encode(signature).decode()}
    expect("standard v1a", post(base + "/standard", body.encode(), headers))


def discord(base):
    key = nacl.signing.SigningKey(DISCORD_SEED)
    for name, body, answer in [
        ("discord ping", json.dumps({"id": "ping1", "type": 1, "application_id": "app"}), '{"type":1}'),
        ("discord command", json.dumps({"id": "int_e2e", "type": 2, "application_id": "app",
                                        "data": {"name": "hello"}}), None),
    ]:
        ts = str(int(time.time()))
        signature = key.sign((ts + body).encode()).signature.hex()
        headers = {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": ts}
        expect(name, post(base + "/discord", body.encode(), headers), answer)


def main():
    base = sys.argv[1].rstrip("/")
    slack(base)
    twilio(base)
    standard(base)
    discord(base)
    if failures:
        print("\n".join(["FAILED:"] + failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
