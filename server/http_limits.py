"""uvicorn's fast HTTP/1.1 parser (httptools) with a bound on the request head.

uvicorn bounds the request line and headers only in its h11 implementation
(``h11_max_incomplete_event_size``, 16 KiB by default; an oversized head is answered 400); the
httptools parser it picks by default buffers a head of any size (a 64 MiB header was accepted).
h11 costs about 2.4× the CPU per request of httptools (measured with wrk on a bare route:
11.1k against 27.2k req/s on one worker), so ``tanpuhui serve`` keeps httptools through this
subclass, which answers **431** and closes the connection once a head exceeds the limit. The
limit is uvicorn's own setting, ``Config.h11_max_incomplete_event_size``, so either parser
enforces the same figure (``TANPUHUI_HTTP_MAX_HEADER_BYTES``).

How it is bounded: two counts, each a lower bound of the head's size (so a head within the
limit is never refused), and either over the limit refuses: the URL and the complete headers as
the parser hands them over, exactly; and the whole chunks read from the socket while the head
stayed incomplete, so the parser's own buffer of an unfinished header never holds more than the
limit plus two reads (a read is at most 256 KiB). Only the parser callbacks, ``data_received``
and ``send_400_response`` of uvicorn's ``HttpToolsProtocol`` are extended (uvicorn is pinned in
requirements.lock); tests send oversized heads through ``tanpuhui serve`` and check the 431.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

DEFAULT_MAX_HEAD_BYTES = 16 * 1024

_MESSAGE_431 = b"The request line and headers are too large."
_RESPONSE_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_MESSAGE_431)).encode() + b"\r\n"
    b"connection: close\r\n"
    b"\r\n" + _MESSAGE_431
)


class _HeadTooLarge(Exception):
    """Raised inside a parser callback to stop parsing; turned into the 431 answer."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_limit = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_BYTES
        self._parsed = 0  # URL and complete headers of the current head, exactly
        self._buffered = 0  # whole chunks fed while the head stayed incomplete
        self._in_head = False
        self._too_large = False

    def data_received(self, data: bytes) -> None:
        whole_chunk_in_head = self._in_head
        super().data_received(data)
        if self._too_large or self.transport.is_closing():
            return
        if whole_chunk_in_head and self._in_head:
            # The head began before this chunk and has not ended: all of it is head.
            self._buffered += len(data)
            if self._buffered > self._head_limit:
                self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._parsed = self._buffered = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self.transport.write(_RESPONSE_431)
            self.transport.close()
            return
        super().send_400_response(msg)

    def _count(self, n: int) -> None:
        self._parsed += n
        if self._parsed > self._head_limit:
            self._too_large = True
            raise _HeadTooLarge  # the parser stops; uvicorn answers through send_400_response

    def _refuse(self) -> None:
        self._too_large = True
        self.logger.warning("Request head larger than %d bytes refused.", self._head_limit)
        self.transport.write(_RESPONSE_431)
        self.transport.close()
