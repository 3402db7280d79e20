"""The end-to-end fixtures (Azurite, the sandbox, the registered functions) for these tests."""

from tests.e2e.conftest import e2e, otel

__all__ = ["e2e", "otel"]
