"""What the Azure Functions platform tells the app through its environment.

- Whether it runs in Azure: the Functions host's own tests of its environment
  (azure-functions-host, EnvironmentExtensions: `WEBSITE_INSTANCE_ID` on App Service plans;
  on Flex Consumption `WEBSITE_INSTANCE_ID` is empty and the instance has `WEBSITE_SKU` once
  specialized, before that `CONTAINER_NAME` with `LEGION_SERVICE_HOST`). `CONTAINER_NAME`
  alone is not enough: container runtimes set it on developer machines and CI too.
- Key Vault references that did not resolve: App Service then passes the reference text
  itself as the value ("Troubleshooting Key Vault References", app-service-key-vault-references.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

AZURE_MARKERS = ("WEBSITE_INSTANCE_ID", "WEBSITE_SKU")
LEGION_MARKERS = ("CONTAINER_NAME", "LEGION_SERVICE_HOST")
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


def in_azure(environ: Mapping[str, str] | None = None) -> bool:
    """True on a Functions instance in Azure (any plan), False on a developer's machine or CI."""
    env = os.environ if environ is None else environ
    return any(env.get(name) for name in AZURE_MARKERS) or all(env.get(name) for name in LEGION_MARKERS)


def unresolved_references(names: Iterable[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """The settings among `names` (case-insensitive) whose value is still a Key Vault reference."""
    env = os.environ if environ is None else environ
    wanted = {n.upper() for n in names}
    return sorted(
        name for name, value in env.items() if name.upper() in wanted and value.lstrip().startswith(KEY_VAULT_REFERENCE)
    )


def unresolved_message(names: list[str]) -> str:
    """Why the app refuses to start; names the settings, never their values."""
    return (
        f"{', '.join(names)}: unresolved Key Vault reference (the value is still @Microsoft.KeyVault(...)): "
        "the secret is missing, or the app's identity cannot read it (Key Vault Secrets User, "
        "keyVaultReferenceIdentity); see infra/README.md"
    )
