"""The sandbox tests' fixtures: one in-memory sandbox per test module, and clients of its services."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from p2c_sandbox import Sandbox


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def dv(sb: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/") as client:
        yield client


@pytest.fixture
def fno(sb: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sb.fno_url + "/data/") as client:
        yield client
