"""A moto server on loopback for the integration tests: started here, stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.moto_server import running_moto


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with (tmp_path_factory.mktemp("moto") / "server.log").open("w") as log, running_moto(log) as url:
        yield url
