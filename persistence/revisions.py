"""Read-modify-replace with compare-and-set: the one write loop of the repositories.

Every document the repositories change carries a `revision` token. A writer reads the document,
decides the whole new document from it, and replaces it only if the revision it read is still
the stored one; otherwise another writer got there first, and it reads again and decides again.

Why whole-document replaces instead of update operators (`$set`, `$push`, `$inc`): nx-27017,
the embedded server of the demo and the tests, stores a datetime given to `$set` on an existing
document as a string, and an array grown by `$push` as JSON strings. This loop is the workaround,
kept here and nowhere else; it needs only `find_one`, `insert_one` and `replace_one` with an
equality filter, which behave alike on nx-27017 and on MongoDB.

The policy, one for every collection: at most WRITE_ATTEMPTS reads per write. An attempt fails
only when another writer's replace landed between its read and its own replace, so each failure
of a writer is paid for by a success of another: up to WRITE_ATTEMPTS writers of one document at
once all land. Past that, a writer that lost every round gets StorageUnavailable (503, Retry-After):
the caller's client, or Stripe for a webhook, tries again later. Nothing is half-written.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from domain.errors import StorageUnavailable
from persistence.mongo import Document, storage_errors

R = TypeVar("R")

REVISION = "revision"
WRITE_ATTEMPTS = 32


def new_revision() -> str:
    """A fresh token for a document's `revision`."""
    return secrets.token_hex(8)


def revised(document: Document) -> Document:
    """`document` with a fresh revision: what every insert or replace stores."""
    return {**document, REVISION: new_revision()}


@dataclass(frozen=True, slots=True)
class Write(Generic[R]):
    """A decision of `read_modify_replace`'s `change`: the whole document to store (None:
    store nothing, the stored one is right), and what the write returns to its caller."""

    document: Document | None
    result: R


async def read_modify_replace(
    collection: AsyncCollection[Document],
    key: Document,
    change: Callable[[Document | None], Write[R]],
    *,
    conflict: Callable[[], Exception] | None = None,
    attempts: int = WRITE_ATTEMPTS,
) -> R:
    """Store `change(current)` for the document found by `key` (None when there is none: a
    document given then is inserted), unless another writer changed it meanwhile: then read
    again and call `change` again. `change` must be a pure decision; it may run several times.

    A duplicate key on insert means the same key was inserted meanwhile (merge into it), unless
    the key still finds nothing: then another unique index refused the document, and
    `conflict()` is raised if given. StorageUnavailable when `attempts` reads all lost the race.
    """
    async with storage_errors():
        for _ in range(attempts):
            current = await collection.find_one(key)
            write = change(current)
            if write.document is None:
                return write.result
            if current is None:
                try:
                    await collection.insert_one(revised(write.document))
                except DuplicateKeyError:
                    if conflict is not None and await collection.find_one(key) is None:
                        raise conflict() from None
                    continue
                return write.result
            # An equality filter on the revision read; None also matches a document written
            # before it had one (MongoDB and nx-27017 alike).
            expected = {**key, REVISION: current.get(REVISION)}
            result = await collection.replace_one(expected, revised(write.document))
            if result.matched_count:
                return write.result
    raise StorageUnavailable(
        "MongoDB write kept conflicting",
        backend="mongodb",
        collection=collection.name,
        attempts=attempts,
        **key,
    )
