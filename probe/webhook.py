"""An alerting audit run's JSON summary POSTed to the spec's webhook, retried with backoff on 5xx, 429 and network
errors. The body is signed with HMAC-SHA256 under the secret read from the environment variable the spec names
(header X-Probe-Signature: sha256=HEX); the secret itself is never sent, stored or logged."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request

log = logging.getLogger(__name__)

BACKOFF_S = float(os.environ.get("PROBE_WEBHOOK_BACKOFF_S", "1"))  # doubled after each failed attempt
TIMEOUT_S = 10.0


def payload(audit: str, campaign_id: str, prev: dict | None, d: dict | None, found: list[dict]) -> dict:
    return {
        "audit": audit, "run": campaign_id, "previous_run": (prev or {}).get("campaign"),
        "alerting": bool(found), "alerts": [{k: x[k] for k in ("rule", "model", "key", "message")} for x in found],
        "version_changed": (d or {}).get("version_changed", []),
        "correction": (d or {}).get("correction"),
        "significant": [{k: t[k] for k in ("kind", "model", "key", "change", "test", "p", "p_adjusted")}
                        for t in (d or {}).get("significant", [])],
    }


def _redact(url: str) -> str:
    return url.split("?", 1)[0]  # a query string may carry a token


def deliver(hook, body: dict) -> dict:
    """POST body to hook.url, up to hook.attempts times; returns {status, attempts, error}."""
    data = json.dumps(body, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "probe-audit"}
    if hook.secret_env:
        secret = os.environ.get(hook.secret_env)
        if not secret:
            log.error("webhook: %s is unset: not sent", hook.secret_env)
            return {"status": None, "attempts": 0, "error": f"{hook.secret_env} is unset or empty"}
        headers["X-Probe-Signature"] = "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
    error = None
    for attempt in range(1, hook.attempts + 1):
        try:
            req = urllib.request.Request(hook.url, data=data, headers=headers, method="POST")
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
                return {"status": r.status, "attempts": attempt, "error": None}
        except urllib.error.HTTPError as e:
            error = f"HTTP {e.code}"
            if e.code < 500 and e.code != 429:  # the receiver refuses it: asking again will not help
                return {"status": e.code, "attempts": attempt, "error": error}
        except (urllib.error.URLError, OSError) as e:
            error = f"{type(e).__name__}: {str(e)[:200]}"
        log.warning("webhook %s: attempt %d failed (%s)", _redact(hook.url), attempt, error)
        if attempt < hook.attempts:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
    return {"status": None, "attempts": hook.attempts, "error": error}
