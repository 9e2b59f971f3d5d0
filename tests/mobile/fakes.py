"""Local HTTP stand-ins for the outside world: the SMS gateway and WeChat's code2session."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeUpstreams:
    """``POST /sms`` records the code sent to each phone; ``GET /sns/jscode2session`` answers
    the openid registered for a login code (errcode 40029 otherwise)."""

    def __init__(self) -> None:
        self.sms: list[dict[str, Any]] = []
        self.openids: dict[str, str] = {}
        self.sms_status = 200
        self.wechat_calls: list[dict[str, list[str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if urlsplit(self.path).path == "/sms":
                    body["authorization"] = self.headers.get("Authorization")
                    fake.sms.append(body)
                    self._answer(fake.sms_status, {"ok": fake.sms_status == 200})
                else:
                    self._answer(404, {})

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/sns/jscode2session":
                    self._answer(404, {})
                    return
                query = parse_qs(parts.query)
                fake.wechat_calls.append(query)
                code = query.get("js_code", [""])[0]
                if query.get("appid") != ["wx-test-app"] or query.get("secret") != [
                    "wx-test-secret"
                ]:
                    self._answer(200, {"errcode": 40013, "errmsg": "invalid appid"})
                elif code in fake.openids:
                    self._answer(200, {"openid": fake.openids[code], "session_key": "sk"})
                else:
                    self._answer(200, {"errcode": 40029, "errmsg": "invalid code"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeUpstreams:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        self.sms.clear()
        self.openids.clear()
        self.wechat_calls.clear()
        self.sms_status = 200

    def last_code(self, phone: str) -> str:
        for item in reversed(self.sms):
            if item["phone"] == phone:
                return str(item["code"])
        raise AssertionError(f"no code sent to {phone}")
