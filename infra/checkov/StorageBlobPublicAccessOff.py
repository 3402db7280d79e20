"""Custom checkov policy: a storage account must say `allowBlobPublicAccess: false`.

checkov's built-in checks for Bicep do not look at this property, and its default has
changed across API versions, so p2c requires it spelled out.
"""

from __future__ import annotations

from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult


class StorageBlobPublicAccessOff(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure storage accounts set allowBlobPublicAccess to false explicitly",
            id="CKV_P2C_1",
            categories=(CheckCategories.GENERAL_SECURITY,),
            supported_resources=("Microsoft.Storage/storageAccounts",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["properties/allowBlobPublicAccess"]
        properties = conf.get("properties")
        if not isinstance(properties, dict):
            return CheckResult.FAILED
        value = properties.get("allowBlobPublicAccess")
        return CheckResult.PASSED if value is False or str(value).lower() == "false" else CheckResult.FAILED


check = StorageBlobPublicAccessOff()
