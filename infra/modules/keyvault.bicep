// Key Vault (RBAC mode) for the service principal secret, used only when managed
// identity cannot be used against Dynamics. The template never writes a secret value.
param location string
param tags object
param token string
param publicNetworkAccess string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: public access is a parameter; with it Enabled the vault still needs RBAC (no access policies), and Disabled needs a private endpoint this template does not create.
  // checkov:skip=CKV_AZURE_189: as above, public network access is the operator's choice (parameter).
  name: 'kv-p2c-${token}'
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
