// p2c: everything the Functions app needs in Azure. `azd up` or
// `az deployment sub create -l <region> -f infra/main.bicep -p infra/main.parameters.json`.
// Secure defaults by hand (Azure Verified Modules style): identity instead of keys,
// no shared-key storage access, no public blobs, TLS 1.2, local auth off for telemetry.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('Name of the environment; used in resource names and the resource group name.')
param environmentName string

@minLength(1)
@description('Azure region for every resource.')
param location string

@description('Object id of the deploying user, given data roles for local runs against the cloud resources. Empty: none.')
param principalId string = ''

@description('Dataverse org root, e.g. https://contoso.crm.dynamics.com')
param dataverseUrl string

@description('F&O environment root, e.g. https://contoso.operations.dynamics.com')
param fnoUrl string

@description('F&O legal entity (dataAreaId), e.g. usmf')
param fnoCompany string

@description('Tenant of the service principal used for Dynamics when managed identity cannot be used. Empty: the tenant of the subscription.')
param dynamicsTenantId string = ''

@description('Client id of that service principal. Empty: the app uses its managed identity for Dynamics.')
param dynamicsClientId string = ''

@description('Name of the Key Vault secret holding that service principal secret. Empty: no secret.')
param dynamicsClientSecretName string = ''

@description('Timer schedule (NCRONTAB, six fields) per flow.')
param schedules object = {
  accounts: '0 */5 * * * *'
  products: '0 */15 * * * *'
  contacts: '0 */5 * * * *'
  contact_customers: '0 */5 * * * *'
  quotes: '0 */5 * * * *'
  orders: '0 */5 * * * *'
  fno_orders: '0 */10 * * * *'
  invoices: '0 */15 * * * *'
}

@description('Which flows run (true/false per flow).')
param enabled object = {
  accounts: true
  products: true
  contacts: true
  contact_customers: true
  quotes: true
  orders: true
  fno_orders: true
  invoices: true
}

@description('Value maps as JSON strings (empty: the built-in default or not mapped); see README, Settings.')
param valueMaps object = {
  country: ''
  unit: ''
  priceList: ''
  paymentTerms: ''
  freightTerms: ''
  shippingMethod: ''
  productType: ''
  processingStatus: ''
}

@description('Defaults for new records; see README, Settings.')
param defaults object = {
  customerGroup: '10'
  site: '1'
  warehouse: '13'
  language: 'en-us'
  country: 'US'
  unitGroup: 'Default Unit'
}

@description('E-mail address that receives failure and poison-queue alerts.')
param alertEmail string

@description('Public network access to the Key Vault: Enabled or Disabled.')
@allowed([
  'Enabled'
  'Disabled'
])
param keyVaultPublicNetworkAccess string = 'Enabled'

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-p2c-${environmentName}'
  location: location
  tags: tags
}

module resources 'resources.bicep' = {
  name: 'p2c-resources'
  scope: rg
  params: {
    location: location
    token: token
    tags: tags
    principalId: principalId
    dataverseUrl: dataverseUrl
    fnoUrl: fnoUrl
    fnoCompany: fnoCompany
    dynamicsTenantId: empty(dynamicsTenantId) ? tenant().tenantId : dynamicsTenantId
    dynamicsClientId: dynamicsClientId
    dynamicsClientSecretName: dynamicsClientSecretName
    schedules: schedules
    enabled: enabled
    valueMaps: valueMaps
    defaults: defaults
    alertEmail: alertEmail
    keyVaultPublicNetworkAccess: keyVaultPublicNetworkAccess
  }
}

output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = resources.outputs.functionAppName
output AZURE_STORAGE_ACCOUNT_NAME string = resources.outputs.storageAccountName
output AZURE_KEY_VAULT_NAME string = resources.outputs.keyVaultName
output P2C_MANAGED_IDENTITY_CLIENT_ID string = resources.outputs.identityClientId
