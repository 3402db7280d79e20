"""The end-to-end fixtures (Azurite, the sandbox, the registered functions) for these tests."""

from tests.e2e.conftest import e2e, otel, sandbox_options

__all__ = ["e2e", "otel", "sandbox_options"]
