// The resources of one p2c environment (resource group scope).
param location string
param token string
param tags object
param principalId string
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string
param principalDataRoles bool
param principalSecretsOfficer bool
param dataverseUrl string
param fnoUrl string
param fnoCompany string
param companies string
param dynamicsTenantId string
param dynamicsClientId string
param dataverseAppUsers string
param dynamicsClientSecretName string
@secure()
param messageSigningKey string
param pushEnabled bool
@secure()
param eventsKey string
param schedules object
param enabled object
param valueMaps object
param mappingOverlay string
param mappingOverlayFile string
param defaults object
param alertEmail string
param vnetEnabled bool
param keyVaultNameSalt string
param consoleAuthClientId string

// Queue names of the flows (a flow's name with `_` as `-`: queue names allow no `_`).
var flows = [
  'accounts'
  'products'
  'contacts'
  'contact-customers'
  'quotes'
  'orders'
  'fno-orders'
  'invoices'
]
var queueNames = [for flow in flows: 'p2c-${flow}']
var poisonQueueNames = [for flow in flows: 'p2c-${flow}-poison']
// Live sync: the nudges the event functions enqueue (p2c_core/nudge.py), and their poison queue.
var eventQueueNames = [
  'p2c-nudges'
  'p2c-nudges-poison'
]
var tableNames = [
  'p2ccursors'
  'p2ckeymap'
  'p2cruns'
  'p2cfailures'
]
var deploymentContainerName = 'app-package'
// Built-in role definition ids.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var dataRoles = [
  storageBlobDataOwner
  storageQueueDataContributor
  storageTableDataContributor
]
// The vault's name stays `kv-p2c-<token>` (existing environments keep their vault and secrets);
// a salt gives a new name when purge protection still holds the old one.
var keyVaultName = empty(keyVaultNameSalt) ? 'kv-p2c-${token}' : 'kv-p2c-${take(uniqueString(token, keyVaultNameSalt), 13)}'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-p2c-${token}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    token: token
    alertEmail: alertEmail
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    name: 'stp2c${token}'
    queueNames: concat(queueNames, poisonQueueNames, eventQueueNames)
    tableNames: tableNames
    deploymentContainerName: deploymentContainerName
    vnetEnabled: vnetEnabled
    workspaceId: monitoring.outputs.workspaceId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: tags
    name: keyVaultName
    messageSigningKey: messageSigningKey
    eventsKey: eventsKey
    workspaceId: monitoring.outputs.workspaceId
  }
}

module network 'modules/network.bicep' = if (vnetEnabled) {
  name: 'network'
  params: {
    location: location
    tags: tags
    token: token
    storageAccountId: storage.outputs.id
    keyVaultId: keyVault.outputs.id
  }
}

// Every name below is a module's output, so each assignment waits for its resource
// (as the Flex samples pass monitoring.outputs.name to their rbac module).
module appRoles 'modules/roles.bicep' = {
  name: 'app-roles'
  params: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: keyVault.outputs.name
    storageRoles: dataRoles
    appInsightsRoles: [
      monitoringMetricsPublisher
    ]
    keyVaultRoles: [
      keyVaultSecretsUser
    ]
  }
}

module principalRoles 'modules/roles.bicep' = if ((principalDataRoles || principalSecretsOfficer) && !empty(principalId)) {
  name: 'principal-roles'
  params: {
    principalId: principalId
    principalType: principalType
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: keyVault.outputs.name
    storageRoles: principalDataRoles ? dataRoles : []
    appInsightsRoles: []
    keyVaultRoles: principalSecretsOfficer ? [
      keyVaultSecretsOfficer
    ] : []
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    tags: tags
    token: token
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUri: keyVault.outputs.uri
    messageSigningKeySecretName: keyVault.outputs.messageSigningKeySecretName
    eventsKeySecretName: keyVault.outputs.eventsKeySecretName
    pushEnabled: pushEnabled
    eventsKey: eventsKey
    appSubnetId: vnetEnabled ? network.outputs.appSubnetId : ''
    dataverseUrl: dataverseUrl
    fnoUrl: fnoUrl
    fnoCompany: fnoCompany
    companies: companies
    dynamicsTenantId: dynamicsTenantId
    dynamicsClientId: dynamicsClientId
    dynamicsClientSecretName: dynamicsClientSecretName
    dataverseAppUsers: dataverseAppUsers
    schedules: schedules
    enabled: enabled
    valueMaps: valueMaps
    defaults: defaults
    mappingOverlay: mappingOverlay
    mappingOverlayFile: mappingOverlayFile
    consoleAuthClientId: consoleAuthClientId
  }
  // The identity's roles first: the host reads storage and resolves Key Vault references at start.
  dependsOn: [
    appRoles
  ]
}

output functionAppName string = functionApp.outputs.name
output storageAccountName string = storage.outputs.name
output keyVaultName string = keyVault.outputs.name
output identityClientId string = identity.properties.clientId
