"""Events sent to a real demo server the way the browser sends them (Gradio's queue protocol:
POST /queue/join, then one server-sent-event stream per session), with any event data, so a test
can send what a page would never send: crafted clicks, table rows, many events at once.

Handlers are found by the component that triggers them (its elem_id) and the event name, never by
their api_name or position, so the tests survive new endpoints."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import requests


class DemoEvents:
    """One browser session (one session hash) of the demo at `url`."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/"
        self.http = requests.Session()
        self.session_hash = uuid.uuid4().hex[:11]
        self.config = self.http.get(self.url + "config", timeout=30).json()
        self.api = self.url + self.config.get("api_prefix", "/gradio_api").strip("/") + "/"
        self._ids = {c["props"].get("elem_id"): c["id"] for c in self.config["components"] if c.get("props")}

    def component(self, elem_id: str) -> int:
        if elem_id not in self._ids:
            raise KeyError(f"no component with elem_id {elem_id!r} in the page")
        return self._ids[elem_id]

    def dependency(self, elem_id: str, event: str) -> dict:
        """The handler bound to `event` of the component `elem_id` (the first one, when several)."""
        target = self.component(elem_id)
        for dep in self.config["dependencies"]:
            if [target, event] in [list(t) for t in dep["targets"]]:
                return dep
        raise KeyError(f"no handler for {event!r} of {elem_id!r}")

    def upload(self, path: Path) -> dict:
        """The file uploaded as Gradio's FileData (what the page sends for a file input)."""
        with open(path, "rb") as f:
            response = self.http.post(self.api + "upload", files={"files": (path.name, f)}, timeout=60)
        response.raise_for_status()
        server_path = response.json()[0]
        return {"path": server_path, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def join(self, elem_id: str, event: str, data: list, event_data=None) -> str:
        """Queue one event; returns its event id. `data`: one value per input of the handler, in
        order (None for gr.State inputs: the server holds those)."""
        dep = self.dependency(elem_id, event)
        if len(data) != len(dep["inputs"]):
            raise ValueError(f"{elem_id}.{event} takes {len(dep['inputs'])} inputs, got {len(data)}")
        body = {"data": data, "event_data": event_data, "fn_index": dep["id"],
                "trigger_id": self.component(elem_id), "session_hash": self.session_hash}  # fmt: skip
        response = self.http.post(self.api + "queue/join", json=body, timeout=60)
        response.raise_for_status()
        return response.json()["event_id"]

    def wait(self, event_ids: list[str], timeout_s: float = 120) -> dict[str, dict]:
        """The final message of each event (`process_completed`, or the message that ended it),
        read from the session's stream."""
        pending, done = set(event_ids), {}
        with self.http.get(
            self.api + "queue/data",
            params={"session_hash": self.session_hash},
            stream=True,
            timeout=timeout_s,
        ) as stream:
            for line in stream.iter_lines(decode_unicode=True):
                if not line or not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                event_id = message.get("event_id")
                if event_id in pending and message.get("msg") in ("process_completed", "unexpected_error"):
                    done[event_id] = message
                    pending.discard(event_id)
                if not pending:
                    break
        if pending:
            raise TimeoutError(f"{len(pending)} event(s) got no answer: {sorted(pending)}")
        return done

    def call(self, elem_id: str, event: str, data: list, event_data=None, timeout_s: float = 120) -> dict:
        """Send one event and wait for its answer: {"success": bool, "output": {...}}."""
        event_id = self.join(elem_id, event, data, event_data)
        return self.wait([event_id], timeout_s)[event_id]


def outputs(message: dict) -> list:
    """The handler's output values of a successful event."""
    assert message.get("success"), f"the event failed: {message}"
    return message["output"]["data"]


def error_text(message: dict) -> str:
    """The error message an event ended with ('' when it succeeded)."""
    if message.get("success"):
        return ""
    return str((message.get("output") or {}).get("error") or message.get("message") or message)
