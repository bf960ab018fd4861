"""Fault stretches for the test model server (``POST /faults``): for the next N seconds every request gets one
outcome, then the server is back to normal; and the client helpers that set them."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

MODES = ("429", "500", "hang", "ok")


@dataclass(frozen=True)
class FaultStretch:
    mode: str
    start: float  # time.monotonic() in the server
    end: float
    retry_after: int | None = None
    hang_seconds: float | None = None


def plan(payload: Any, now: float) -> list[FaultStretch]:
    """Stretches from a POST /faults body (an object or a list of them), back to back from `now`."""
    entries = payload if isinstance(payload, list) else [payload]
    out, start = [], now
    for e in entries:
        if not isinstance(e, dict):
            raise ValueError("each fault stretch is an object with 'mode' and 'seconds'")
        mode = str(e.get("mode"))
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {e.get('mode')!r}")
        seconds = e.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 1e6:
            raise ValueError(f"seconds must be a number >= 0, not {seconds!r}")
        retry_after, hang_seconds = e.get("retry_after"), e.get("hang_seconds")
        if retry_after is not None and (isinstance(retry_after, bool) or not isinstance(retry_after, int)
                                        or retry_after < 0):
            raise ValueError(f"retry_after must be a whole number of seconds >= 0, not {retry_after!r}")
        if hang_seconds is not None and (isinstance(hang_seconds, bool)
                                         or not isinstance(hang_seconds, (int, float)) or hang_seconds < 0):
            raise ValueError(f"hang_seconds must be a number >= 0, not {hang_seconds!r}")
        out.append(FaultStretch(mode, start, start + seconds, retry_after, hang_seconds))
        start += seconds
    return [f for f in out if f.end > f.start]


def set_fault_plan(base_url: str, stretches: list[dict[str, Any]], timeout: float = 10) -> dict[str, Any]:
    """POST /faults with a list of stretches ({"mode", "seconds", "retry_after"?, "hang_seconds"?}), run back to
    back from now; returns the server's GET /faults view. ``[]`` clears them."""
    req = urllib.request.Request(base_url.rstrip("/") + "/faults", data=json.dumps(stretches).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def set_faults(base_url: str, mode: str, seconds: float, retry_after: int | None = None,
               hang_seconds: float | None = None) -> dict[str, Any]:
    """For the next ``seconds`` every request to the server at ``base_url`` gets ``mode`` ("429", "500", "hang"
    or "ok"), then it is back to normal; replaces any stretches still to come."""
    stretch: dict[str, Any] = {"mode": str(mode), "seconds": seconds}
    if retry_after is not None:
        stretch["retry_after"] = retry_after
    if hang_seconds is not None:
        stretch["hang_seconds"] = hang_seconds
    return set_fault_plan(base_url, [stretch])
