"""MongoDB for the tests: MONGODB_URI when set, else an nx-27017 server started here.

Each test gets a database of its own; nx-27017 runs with a data directory (one file per
database), so dropping one test's database leaves the others alone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from persistence.mongo import Database, connect, ensure_indexes
from reservation.stores.embedded import EmbeddedMongo, nx_binary


class MongoServer(EmbeddedMongo):
    """The embedded server of the app, skipping the test when nx-27017 is missing."""

    def start(self, timeout: float = 20.0) -> str:
        if nx_binary() is None:
            pytest.skip("nx-27017 is not installed and MONGODB_URI is not set")
        return super().start(timeout)


@pytest.fixture(scope="session")
def mongodb_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The MongoDB every test shares (each in a database of its own)."""
    if os.environ.get("MONGODB_URI"):
        yield os.environ["MONGODB_URI"]
        return
    server = MongoServer(tmp_path_factory.mktemp("mongo"))
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
async def mongo_db(mongodb_uri: str) -> AsyncIterator[Database]:
    """A fresh database with the indexes, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    client, db = connect(mongodb_uri, name)
    try:
        await ensure_indexes(db)
        yield db
    finally:
        await client.drop_database(name)
        await client.close()
