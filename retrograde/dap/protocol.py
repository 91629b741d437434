"""DAP wire format: Content-Length framed JSON messages with seq numbers, over a pair of byte streams."""

from __future__ import annotations

import json
import threading
from typing import Any, BinaryIO

# A header block longer than this, or a body larger than this, is not a DAP client talking.
_MAX_HEADER = 8192
_MAX_BODY = 64 * 1024 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not a DAP message (one sentence for stderr)."""


class Connection:
    """Reads requests and writes responses and events; writes are serialised, seq numbers are ours."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self._reader = reader
        self._writer = writer
        self._lock = threading.Lock()
        self._seq = 0
        self.last_answered = -1  # seq of the latest request responded to (an error after it goes as output)

    def read(self) -> dict[str, Any] | None:
        """The next message, or None at a clean end of input (between messages)."""
        length: int | None = None
        header_bytes = 0
        first = True
        while True:
            line = self._reader.readline(_MAX_HEADER)
            if not line:
                if first:
                    return None
                raise ProtocolError("the input ended inside a message header")
            first = False
            header_bytes += len(line)
            if header_bytes >= _MAX_HEADER:
                raise ProtocolError("a message header is too long")
            text = line.decode("ascii", "replace").strip()
            if not text:
                if length is None:
                    raise ProtocolError("a message has no Content-Length header")
                break
            name, colon, value = text.partition(":")
            if not colon:
                raise ProtocolError(f"malformed header line {text[:60]!r}")
            if name.strip().lower() == "content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise ProtocolError(f"bad Content-Length {value.strip()[:30]!r}") from None
                if not 0 <= length <= _MAX_BODY:
                    raise ProtocolError(f"Content-Length {length} is out of range")
        body = self._read_exactly(length)
        try:
            message = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProtocolError(f"a message body is not JSON: {exc}") from None
        if not isinstance(message, dict):
            raise ProtocolError("a message body is not a JSON object")
        return message

    def _read_exactly(self, length: int) -> bytes:
        parts: list[bytes] = []
        left = length
        while left > 0:
            chunk = self._reader.read(left)
            if not chunk:
                raise ProtocolError("the input ended inside a message body")
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def send(self, message: dict[str, Any]) -> None:
        """Frame and write one message, giving it the next seq number."""
        with self._lock:
            self._seq += 1
            message = {"seq": self._seq, **message}
            body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            self._writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self._writer.flush()

    def respond(self, request: dict[str, Any], body: dict[str, Any] | None = None,
                error: str | None = None) -> None:
        """The response to `request`: success with `body`, or failure with a one-sentence `error`."""
        message: dict[str, Any] = {
            "type": "response", "request_seq": request.get("seq", 0), "success": error is None,
            "command": request.get("command", ""),
        }
        if error is not None:
            message["message"] = error  # no body.error: its format would read {braces} as variables
        elif body is not None:
            message["body"] = body
        self.last_answered = message["request_seq"]
        self.send(message)

    def event(self, name: str, body: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"type": "event", "event": name}
        if body is not None:
            message["body"] = body
        self.send(message)
