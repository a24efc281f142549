"""Live stock for every open product page: one reader per watched SKU per process, fanned out.

Every stream of `GET /v1/products/{sku}/events` (reservation/api/stock_events.py) watches a
`Channel`: the SKU's latest value in this process, with a version. The first watcher of a SKU
starts the channel's reader, an asyncio task that reads the product (the catalog's one-call
product read, through the process's read cache) at once and then every `read_seconds` (0.25 s:
at most 4 reads a second), and the last watcher to leave stops it. So what Redis sees is one
read per watched SKU per process every 0.25 s, whether 1 stream watches it or 10,000.

A read whose value differs from the last publishes it under a new version (a number that only
grows in this process) and wakes every stream waiting on the channel. A stream sends the value
current when it wakes, not each one it missed: a slow stream skips intermediate values instead
of buffering them, and no stream sends more than one event per read, so at most 4 a second.

The first read decides whether a watch starts: its error (an unknown SKU, Redis down) is every
waiting watcher's, before anything is streamed. After it, a read that fails keeps the last value
(streams go on sending keep-alives, nothing else) and the reader tries again at its next tick;
the next value that differs from the last one sent is published as usual.

One process, one event loop: no lock.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

import msgspec

from domain.errors import ServerBusy

logger = logging.getLogger("reservation.stock_feed")

READ_SECONDS = 0.25  # one read per watched SKU per this long: at most 4 events a second

Read = Callable[[str], Awaitable[bytes]]  # a SKU's product view, as JSON
Frame = Callable[[int, bytes], bytes]  # one event on the wire, from its version and its data


class StockValue(msgspec.Struct, frozen=True):
    """The data of a `stock` event: what a product page shows live."""

    sku: str
    available: int
    on_sale: bool


_decode_value = msgspec.json.Decoder(StockValue).decode
_encode_value = msgspec.json.Encoder().encode

# Versions of every channel of this process: a reconnecting stream that lands on a channel
# started since (its SKU unwatched for a while) never sees a version go back.
_versions = itertools.count(1)


def stock_data(product_json: bytes) -> bytes:
    """A `stock` event's data (JSON) from a product view's JSON (other members ignored)."""
    return _encode_value(_decode_value(product_json))


class Channel:
    """One SKU's latest value in this process, and how many streams watch it."""

    def __init__(self, sku: str) -> None:
        self.sku = sku
        self.watchers = 0
        self.version = 0  # 0: no value yet
        self.data = b""  # the latest value's JSON
        self.frame = b""  # the latest value as one event on the wire
        self.ready = asyncio.Event()  # set at the first value, or at the first read's error
        self.error: Exception | None = None  # that error
        self.changed = asyncio.Event()  # set (and replaced) at each new value
        self.reader: asyncio.Task[None] | None = None
        self.failing = False  # the last read failed (logged once per failing streak)

    def publish(self, data: bytes, frame: Frame) -> None:
        """A value read now: a new version if it differs from the last, streams woken."""
        if data != self.data:
            self.version = next(_versions)
            self.data, self.frame = data, frame(self.version, data)
            changed, self.changed = self.changed, asyncio.Event()
            changed.set()
        self.ready.set()

    def fail(self, error: Exception) -> None:
        """The first read failed: every watcher waiting for it gets `error`."""
        self.error = error
        self.ready.set()

    async def after(self, seen: int) -> tuple[int, bytes]:
        """The current value once its version is past `seen`: (version, frame)."""
        while self.version <= seen:
            await self.changed.wait()
        return self.version, self.frame


class Subscription:
    """One stream's watch of a channel; `close` it once, when the stream ends."""

    def __init__(self, feed: StockFeed, channel: Channel) -> None:
        self.feed = feed
        self.channel = channel
        self.closed = False

    async def after(self, seen: int) -> tuple[int, bytes]:
        return await self.channel.after(seen)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.feed.leave(self.channel)


class StockFeed:
    """The channels of this process, their readers, and the cap on open streams."""

    def __init__(
        self, read: Read, frame: Frame, *, max_streams: int, read_seconds: float = READ_SECONDS
    ) -> None:
        self.read = read
        self.frame = frame
        self.max_streams = max_streams
        self.read_seconds = read_seconds
        self.channels: dict[str, Channel] = {}
        self.streams = 0  # open subscriptions, all SKUs together
        self.reads = 0  # product reads the readers made so far (GET /metrics)

    async def subscribe(self, sku: str) -> Subscription:
        """A watch of `sku` once it has a value; ServerBusy past the cap, and the first read's
        error (UnknownSku, StorageUnavailable) when it failed."""
        if self.streams >= self.max_streams:
            raise ServerBusy(
                f"this process already has {self.max_streams} event streams open",
                limit=self.max_streams,
            )
        channel = self.channels.get(sku)
        if channel is None:
            channel = self.channels[sku] = Channel(sku)
            channel.reader = asyncio.create_task(self._read(channel), name=f"stock-feed {sku}")
        channel.watchers += 1
        self.streams += 1
        subscription = Subscription(self, channel)
        try:
            await channel.ready.wait()
        except BaseException:
            subscription.close()
            raise
        if channel.error is not None:
            subscription.close()
            # The one error of every waiting watcher: raised afresh, its traceback not grown.
            raise channel.error.with_traceback(None)
        return subscription

    def leave(self, channel: Channel) -> None:
        channel.watchers -= 1
        self.streams -= 1
        if channel.watchers == 0:
            self._stop(channel)

    async def close(self) -> None:
        """Stop every reader (the app's shutdown, once its streams have ended)."""
        readers = [c.reader for c in self.channels.values() if c.reader is not None]
        for channel in list(self.channels.values()):
            self._stop(channel)
        await asyncio.gather(*readers, return_exceptions=True)

    def _stop(self, channel: Channel) -> None:
        if self.channels.get(channel.sku) is channel:
            del self.channels[channel.sku]
        if channel.reader is not None:
            channel.reader.cancel()

    async def _read(self, channel: Channel) -> None:
        """The channel's reader: a read at once, then one every `read_seconds`."""
        while True:
            try:
                self.reads += 1
                data = stock_data(await self.read(channel.sku))
            except Exception as error:
                if not channel.ready.is_set():
                    channel.fail(error)  # nobody streams yet: the watchers answer the error
                    if self.channels.get(channel.sku) is channel:
                        del self.channels[channel.sku]  # the next watcher starts anew
                    return
                self._failed(channel, error)
            else:
                if channel.failing:
                    channel.failing = False
                    logger.info(
                        "stock feed reads again", extra={"sku": channel.sku, "outcome": "resumed"}
                    )
                channel.publish(data, self.frame)
            await asyncio.sleep(self.read_seconds)

    def _failed(self, channel: Channel, error: Exception) -> None:
        """A read after the first failed: the streams keep the last value, and the reader
        tries again at its next tick. Logged once per failing streak (Redis down for a minute
        is one warning, not 240)."""
        if channel.failing:
            return
        channel.failing = True
        logger.warning(
            "stock feed read failed; streams keep the last value and the read is retried",
            exc_info=error,
            extra={"sku": channel.sku, "outcome": "read_failed"},
        )
