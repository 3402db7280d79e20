// Key Vault (RBAC mode): the queue-message signing key, which every deployment has, and the
// Dynamics service principal secret when one is used (the operator sets that one).
// Public network access stays on (RBAC only, no access policies): App Service resolves Key Vault
// references itself, and a network-restricted vault needs that traffic routed through a VNet
// ("Access network-restricted vaults", app-service-key-vault-references.md), which this template
// does not rely on for Flex Consumption. With vnetEnabled the app's own calls go through a
// private endpoint (modules/network.bicep).
param location string
param tags object
param name string
@secure()
param messageSigningKey string
@secure()
param eventsKey string
param workspaceId string

var messageSigningKeySecretName = 'p2c-message-signing-key'
var eventsKeySecretName = 'p2c-events-key'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: public access stays on because App Service resolves Key Vault references over it (see the header); access is RBAC only.
  // checkov:skip=CKV_AZURE_189: as CKV_AZURE_109.
  name: name
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
    // Purge protection holds a deleted vault's name for 90 days; main.bicep's keyVaultNameSalt
    // gives an environment that was deleted with `azd down --purge` a new name.
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// Written only when a value is given: an empty parameter keeps the secret already in the vault.
resource messageSigningKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(messageSigningKey)) {
  // checkov:skip=CKV_AZURE_41: the key is rotated by deploying a new value, not by expiry; an expired key would stop every flow.
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional resource.
  parent: vault
  name: messageSigningKeySecretName
  properties: {
    value: messageSigningKey
    contentType: 'text/plain'
  }
}

// The key event sources present (P2C_EVENTS_KEY); as the signing key, written only when given.
resource eventsKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(eventsKey)) {
  // checkov:skip=CKV_AZURE_41: rotated by deploying a new value (and registering again), not by expiry.
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional resource.
  parent: vault
  name: eventsKeySecretName
  properties: {
    value: eventsKey
    contentType: 'text/plain'
  }
}

resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
output messageSigningKeySecretName string = messageSigningKeySecretName
output eventsKeySecretName string = eventsKeySecretName
