"""A MongoDB-compatible server for the (c)+MongoDB figure, started the way the tests start one.

``MONGO_URI`` from the environment if set (used as is, never stopped), else a ``mongod`` from
PATH, else FerretDB v1.24.2 (SQLite) built once with Go and cached: the logic of
``tests/support/mongo.py``, imported from there.
"""

from __future__ import annotations

import os
import uuid
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any


class BenchMongo(AbstractContextManager["BenchMongo"]):
    def __init__(self, data_dir: Path) -> None:
        from tests.support import mongo as support

        self._support = support
        env_uri = os.environ.get("MONGO_URI")
        if env_uri:
            self.server = support.MongoServer("env", env_uri, None, None)
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            self.server = self._guard(lambda: support.local_server(data_dir))
        self._guard(self.server.start)
        self.kind: str = self.server.kind
        self.uri: str = self.server.uri

    def _guard(self, call: Any) -> Any:
        # The tests' helpers report failure with pytest.fail (a BaseException): make it an error.
        try:
            return call()
        except self._support.pytest.fail.Exception as exc:
            raise RuntimeError(str(exc)) from None

    @staticmethod
    def database_name() -> str:
        return f"bench_{uuid.uuid4().hex[:12]}"

    def count_notes(self, database: str, collection: str = "notes") -> int:
        with self.server.client() as client:
            return int(client[database][collection].count_documents({}))

    def drop(self, database: str) -> None:
        with self.server.client() as client:
            client.drop_database(database)

    def close(self) -> None:
        if self.server.restartable:
            self.server.stop()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
