// The resources of one p2c environment (resource group scope).
param location string
param token string
param tags object
param principalId string
param dataverseUrl string
param fnoUrl string
param fnoCompany string
param dynamicsTenantId string
param dynamicsClientId string
param dynamicsClientSecretName string
param schedules object
param enabled object
param valueMaps object
param defaults object
param alertEmail string
param keyVaultPublicNetworkAccess string

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
var dataRoles = [
  storageBlobDataOwner
  storageQueueDataContributor
  storageTableDataContributor
]

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-p2c-${token}'
  location: location
  tags: tags
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    name: 'stp2c${token}'
    queueNames: concat(queueNames, poisonQueueNames)
    tableNames: tableNames
    deploymentContainerName: deploymentContainerName
  }
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

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: tags
    token: token
    publicNetworkAccess: keyVaultPublicNetworkAccess
  }
}

module appRoles 'modules/roles.bicep' = {
  name: 'app-roles'
  params: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    storageAccountName: storage.outputs.name
    appInsightsName: 'appi-p2c-${token}'
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

module userRoles 'modules/roles.bicep' = if (!empty(principalId)) {
  name: 'user-roles'
  params: {
    principalId: principalId
    principalType: 'User'
    storageAccountName: storage.outputs.name
    appInsightsName: 'appi-p2c-${token}'
    keyVaultName: keyVault.outputs.name
    storageRoles: dataRoles
    appInsightsRoles: []
    keyVaultRoles: []
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy is a cost choice left to the operator; a lost zone delays sync, queues keep every change.
  name: 'plan-p2c-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_56: App Service authentication does not apply: the HTTP endpoints use function keys and the rest are timer/queue triggers.
  // checkov:skip=CKV_AZURE_70: httpsOnly is set below; the check does not read Flex Consumption apps.
  // checkov:skip=CKV_AZURE_67: the HTTP version follows the platform default on Flex Consumption.
  // checkov:skip=CKV_AZURE_159: same as CKV_AZURE_67.
  // checkov:skip=CKV_AZURE_17: callers authenticate with function keys; client certificates are not used.
  // checkov:skip=CKV_AZURE_212: the Consumption plan scales to zero on purpose (cents at idle); queues absorb a cold start.
  // checkov:skip=CKV_AZURE_213: health checks are an App Service plan feature; Flex Consumption has none. /api/status reports health.
  // checkov:skip=CKV_AZURE_222: as CKV_AZURE_221.
  // checkov:skip=CKV_AZURE_221: public network access is needed to reach Dataverse and F&O endpoints and for function-key HTTP calls; no VNet is created.
  name: 'func-p2c-${token}'
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.outputs.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identity.properties.clientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storage.outputs.blobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storage.outputs.queueEndpoint
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storage.outputs.tableEndpoint
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: monitoring.outputs.connectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identity.properties.clientId};Authorization=AAD'
        }
        {
          name: 'P2C_DATAVERSE_URL'
          value: dataverseUrl
        }
        {
          name: 'P2C_FNO_URL'
          value: fnoUrl
        }
        {
          name: 'P2C_FNO_COMPANY'
          value: fnoCompany
        }
        {
          name: 'P2C_AUTH_MODE'
          value: 'azure'
        }
        {
          name: 'P2C_MANAGED_IDENTITY_CLIENT_ID'
          value: identity.properties.clientId
        }
        {
          name: 'P2C_TENANT_ID'
          value: dynamicsTenantId
        }
        {
          name: 'P2C_CLIENT_ID'
          value: dynamicsClientId
        }
        {
          name: 'P2C_CLIENT_SECRET'
          value: empty(dynamicsClientSecretName) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${dynamicsClientSecretName})'
        }
        {
          name: 'P2C_FLOWS__ACCOUNTS__ENABLED'
          value: string(enabled.accounts)
        }
        {
          name: 'P2C_FLOWS__ACCOUNTS__SCHEDULE'
          value: schedules.accounts
        }
        {
          name: 'P2C_FLOWS__PRODUCTS__ENABLED'
          value: string(enabled.products)
        }
        {
          name: 'P2C_FLOWS__PRODUCTS__SCHEDULE'
          value: schedules.products
        }
        {
          name: 'P2C_FLOWS__CONTACTS__ENABLED'
          value: string(enabled.contacts)
        }
        {
          name: 'P2C_FLOWS__CONTACTS__SCHEDULE'
          value: schedules.contacts
        }
        {
          name: 'P2C_FLOWS__CONTACT_CUSTOMERS__ENABLED'
          value: string(enabled.contact_customers)
        }
        {
          name: 'P2C_FLOWS__CONTACT_CUSTOMERS__SCHEDULE'
          value: schedules.contact_customers
        }
        {
          name: 'P2C_FLOWS__QUOTES__ENABLED'
          value: string(enabled.quotes)
        }
        {
          name: 'P2C_FLOWS__QUOTES__SCHEDULE'
          value: schedules.quotes
        }
        {
          name: 'P2C_FLOWS__ORDERS__ENABLED'
          value: string(enabled.orders)
        }
        {
          name: 'P2C_FLOWS__ORDERS__SCHEDULE'
          value: schedules.orders
        }
        {
          name: 'P2C_FLOWS__FNO_ORDERS__ENABLED'
          value: string(enabled.fno_orders)
        }
        {
          name: 'P2C_FLOWS__FNO_ORDERS__SCHEDULE'
          value: schedules.fno_orders
        }
        {
          name: 'P2C_FLOWS__INVOICES__ENABLED'
          value: string(enabled.invoices)
        }
        {
          name: 'P2C_FLOWS__INVOICES__SCHEDULE'
          value: schedules.invoices
        }
        {
          name: 'P2C_VALUE_MAPS__COUNTRY'
          value: valueMaps.country
        }
        {
          name: 'P2C_VALUE_MAPS__UNIT'
          value: valueMaps.unit
        }
        {
          name: 'P2C_VALUE_MAPS__PRICE_LIST'
          value: valueMaps.priceList
        }
        {
          name: 'P2C_VALUE_MAPS__PAYMENT_TERMS'
          value: valueMaps.paymentTerms
        }
        {
          name: 'P2C_VALUE_MAPS__FREIGHT_TERMS'
          value: valueMaps.freightTerms
        }
        {
          name: 'P2C_VALUE_MAPS__SHIPPING_METHOD'
          value: valueMaps.shippingMethod
        }
        {
          name: 'P2C_VALUE_MAPS__PRODUCT_TYPE'
          value: valueMaps.productType
        }
        {
          name: 'P2C_VALUE_MAPS__PROCESSING_STATUS'
          value: valueMaps.processingStatus
        }
        {
          name: 'P2C_DEFAULTS__CUSTOMER_GROUP'
          value: defaults.customerGroup
        }
        {
          name: 'P2C_DEFAULTS__SITE'
          value: defaults.site
        }
        {
          name: 'P2C_DEFAULTS__WAREHOUSE'
          value: defaults.warehouse
        }
        {
          name: 'P2C_DEFAULTS__LANGUAGE'
          value: defaults.language
        }
        {
          name: 'P2C_DEFAULTS__COUNTRY'
          value: defaults.country
        }
        {
          name: 'P2C_DEFAULTS__UNIT_GROUP'
          value: defaults.unitGroup
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.outputs.blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: 40
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
  dependsOn: [
    appRoles
  ]
}

output functionAppName string = functionApp.name
output storageAccountName string = storage.outputs.name
output keyVaultName string = keyVault.outputs.name
output identityClientId string = identity.properties.clientId
