// Least-privilege data roles for one principal on the storage account, App Insights and
// Key Vault the app uses. The names come from the modules' outputs (resources.bicep), so
// each `existing` reference below waits for the resource it names.
param principalId string
@allowed([
  'ServicePrincipal'
  'User'
])
param principalType string
param storageAccountName string
param appInsightsName string
param keyVaultName string
param storageRoles array
param appInsightsRoles array
param keyVaultRoles array

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource storageAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in storageRoles: {
  name: guid(storage.id, principalId, roleId)
  scope: storage
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
  }
}]

resource appInsightsAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in appInsightsRoles: {
  name: guid(appInsights.id, principalId, roleId)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
  }
}]

resource keyVaultAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in keyVaultRoles: {
  name: guid(vault.id, principalId, roleId)
  scope: vault
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
  }
}]
