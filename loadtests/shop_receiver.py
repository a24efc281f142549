"""The shop's webhook receiver of a waiting-list rehearsal (`python -m loadtests.run_flash_sale
--waitlist`), run as a process of the stack:

    SHOP_WEBHOOK_SECRET=... python -m loadtests.shop_receiver --port P --record FILE

harness/shop_hooks.py's `ShopHooks` (signature verified, each event taken once by its id)
served with uvicorn; every valid delivery is appended to FILE as one JSON line
`{"id", "first", "event"}` (`first`: the first delivery of that id, the one taken), as it
arrives, so the verifier (loadtests/verify_waitlist.py) reads what the shop got, in its order,
duplicates included. The secret comes from the environment, never the command line.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.shop_hooks import ShopHooks

SECRET_VARIABLE = "SHOP_WEBHOOK_SECRET"
HOOKS_PATH = "/hooks"


@dataclass
class RecordingHooks(ShopHooks):
    """`ShopHooks` that also appends every valid delivery to `record` (one JSON line each)."""

    record: Path = field(default=Path("shop-events.jsonl"))

    def take(self, event: dict[str, Any]) -> None:
        with self.lock:
            first = event["id"] not in self._taken
            if first:
                self._taken.add(event["id"])
                self.events.append(event)
            with self.record.open("a") as handle:
                line = {"id": event["id"], "first": first, "event": event}
                handle.write(json.dumps(line, separators=(",", ":")) + "\n")


def receiver_app(hooks: ShopHooks) -> Starlette:
    """The receiver's routes: POST /hooks, and GET /healthz for the stack to wait on."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[hooks.route(HOOKS_PATH), Route("/healthz", healthz)])


def read_record(path: Path) -> list[dict[str, Any]]:
    """The deliveries a receiver recorded, in arrival order (none when it wrote no file)."""
    if not path.exists():
        return []
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.shop_receiver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True, help="the JSON lines file")
    args = parser.parse_args(argv)
    secret = os.environ.get(SECRET_VARIABLE, "")
    if not secret:
        parser.error(f"{SECRET_VARIABLE} must hold the service's shop webhook secret")
    hooks = RecordingHooks(secret, record=args.record)
    uvicorn.run(
        receiver_app(hooks), host=args.host, port=args.port, access_log=False, log_level="warning"
    )


if __name__ == "__main__":
    main()
