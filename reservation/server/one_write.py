"""A connection's transport that sends what one turn of the event loop writes in one write."""

from __future__ import annotations

import asyncio
from typing import Any


class OneWrite(asyncio.Transport):
    """A connection's transport as uvicorn sees it: what is written in one turn of the event
    loop leaves in one write, at the end of that turn.

    uvicorn writes an answer's head and its body apart, and uvloop sends each at once: two
    system calls and two packets per answer, and a client woken for half an answer. Here the
    head waits for the body (written right after it, in the same turn) and both go together;
    a write nothing follows (a streamed chunk, `100 Continue`) leaves at the end of the turn.
    Closing sends what waits first; an abort drops it."""

    __slots__ = ("loop", "pending", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.transport = transport
        self.loop = loop
        self.pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pending = self.pending
        if not pending:
            self.loop.call_soon(self.flush)
        pending.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        pending = self.pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        if not self.transport.is_closing():  # else the client is gone: nobody to read it
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.pending.clear()
        self.transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def can_write_eof(self) -> bool:
        return self.transport.can_write_eof()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def is_reading(self) -> bool:
        return self.transport.is_reading()

    def get_write_buffer_size(self) -> int:
        waiting = sum(len(data) for data in self.pending)
        return self.transport.get_write_buffer_size() + waiting

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.transport.get_write_buffer_limits()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.transport.get_protocol()
