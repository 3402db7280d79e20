// p2c: everything the Functions app needs in Azure. `azd up` or
// `az deployment sub create -l <region> -f infra/main.bicep -p infra/main.parameters.json`.
// Secure defaults by hand (Azure Verified Modules style): identity instead of keys,
// no shared-key storage access, no public blobs, TLS 1.2, local auth off for telemetry.
// infra/README.md walks a first deployment in order.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('Name of the environment; used in resource names and the resource group name.')
param environmentName string

// Regions that offer Flex Consumption, as Azure-Samples/functions-quickstart-python-http-azd
// lists them (infra/main.bicep); `az functionapp list-flexconsumption-locations` has the current list.
@minLength(1)
@description('Azure region for every resource (one that offers Flex Consumption).')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the deploying principal (azd sets AZURE_PRINCIPAL_ID). Empty: no roles for it.')
param principalId string = ''

@description('What the deploying principal is: User (azd up from a laptop) or ServicePrincipal (CI).')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Give the deploying principal the storage data roles (blobs, queues, tables) for local runs against the cloud account. Off by default.')
param principalDataRoles bool = false

@description('Give the deploying principal Key Vault Secrets Officer, to set the Dynamics client secret. Off by default.')
param principalSecretsOfficer bool = false

@description('Dataverse org root, e.g. https://contoso.crm.dynamics.com')
param dataverseUrl string

@description('F&O environment root, e.g. https://contoso.operations.dynamics.com')
param fnoUrl string

@description('F&O legal entity (dataAreaId), e.g. usmf; with companies, the one that keys written before the company map belong to')
param fnoCompany string

@description('Several legal entities (P2C_COMPANIES) as JSON: dataAreaId -> business_unit or company_code, optional team, per-company defaults and value_maps (docs/companies.md). Empty: one company, fnoCompany.')
param companies string = ''

@description('Tenant of the service principal used for Dynamics when managed identity cannot be used. Empty: the tenant of the subscription.')
param dynamicsTenantId string = ''

@description('Client id of that service principal. Empty: the app uses its managed identity for Dynamics.')
param dynamicsClientId string = ''

@description('Name of the Key Vault secret holding that service principal secret (needs dynamicsClientId). Empty: no secret.')
param dynamicsClientSecretName string = ''

@description('P2C_DATAVERSE_APP_USERS: a pool of Dataverse application users as JSON (docs/scaling.md); each member\'s secret is named by the app setting holding it, not given here. Empty list: one identity.')
param dataverseAppUsers string = '[]'

@secure()
@description('HMAC key for queue messages (P2C_MESSAGE_SIGNING_KEY), written to the vault as p2c-message-signing-key. azd generates it once per environment (infra/hooks). Empty: keep the secret already in the vault.')
param messageSigningKey string = ''

@description('Live sync (P2C_EVENTS_ENABLED): the event functions take Dataverse webhooks and F&O data events, and the timers run on the push schedule (docs/operations.md, Live sync).')
param pushEnabled bool = false

@secure()
@description('The key event sources present (P2C_EVENTS_KEY, at least 32 characters), written to the vault as p2c-events-key and set as the app\'s p2c-events host key. azd generates it once per environment (infra/hooks). Empty: keep the secret already in the vault.')
param eventsKey string = ''

@description('Timer schedule (NCRONTAB, six fields) per flow; the flows not named keep their default.')
param schedules object = {}

@description('Which flows run (true/false per flow); the flows not named keep their default (on).')
param enabled object = {}

@description('Value maps as JSON strings (empty: the built-in default or not mapped); see README, Settings.')
param valueMaps object = {}

@description('Defaults for new records; the ones not named keep their default. See README, Settings.')
param defaults object = {}

@description('Mapping overlay as JSON (docs/customizing.md), or the path of a JSON file shipped with the app; empty: none.')
param mappingOverlay string = ''
param mappingOverlayFile string = ''

@description('E-mail address that receives failure and poison-queue alerts.')
param alertEmail string

@description('Enterprise network: a VNet with the app integrated, private endpoints for storage and the vault, storage closed to the public network.')
param vnetEnabled bool = false

@description('Changes the Key Vault name. Purge protection keeps a deleted vault (and its name) for 90 days: set any new value to deploy an environment again after `azd down --purge`.')
param keyVaultNameSalt string = ''

@description('Client id of a Microsoft Entra app registration for the operator console: turns on App Service authentication (anonymous requests still reach the app, which checks the principal). Empty: off.')
param consoleAuthClientId string = ''

var defaultSchedules = {
  accounts: '0 */5 * * * *'
  products: '0 */15 * * * *'
  contacts: '0 */5 * * * *'
  contact_customers: '0 */5 * * * *'
  quotes: '0 */5 * * * *'
  orders: '0 */5 * * * *'
  fno_orders: '0 */10 * * * *'
  invoices: '0 */15 * * * *'
}
var defaultEnabled = {
  accounts: true
  products: true
  contacts: true
  contact_customers: true
  quotes: true
  orders: true
  fno_orders: true
  invoices: true
}
var defaultValueMaps = {
  country: ''
  unit: ''
  priceList: ''
  paymentTerms: ''
  freightTerms: ''
  shippingMethod: ''
  productType: ''
  processingStatus: ''
}
var defaultDefaults = {
  customerGroup: '10'
  site: '1'
  warehouse: '13'
  language: 'en-us'
  country: 'US'
  unitGroup: 'Default Unit'
}

// A secret name without a client id would make a Key Vault reference the app can never use.
// fail() (Bicep flow-control functions) stops the deployment with this message.
var clientSecretName = (empty(dynamicsClientId) && !empty(dynamicsClientSecretName)) ? fail('dynamicsClientSecretName (P2C_CLIENT_SECRET_NAME) needs dynamicsClientId (P2C_CLIENT_ID)') : dynamicsClientSecretName

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
    principalType: principalType
    principalDataRoles: principalDataRoles
    principalSecretsOfficer: principalSecretsOfficer
    dataverseUrl: dataverseUrl
    fnoUrl: fnoUrl
    fnoCompany: fnoCompany
    companies: companies
    dynamicsTenantId: empty(dynamicsTenantId) ? tenant().tenantId : dynamicsTenantId
    dynamicsClientId: dynamicsClientId
    dynamicsClientSecretName: clientSecretName
    dataverseAppUsers: dataverseAppUsers
    messageSigningKey: messageSigningKey
    pushEnabled: pushEnabled
    eventsKey: eventsKey
    // union: an override of one flow keeps the defaults of the others.
    schedules: union(defaultSchedules, schedules)
    enabled: union(defaultEnabled, enabled)
    valueMaps: union(defaultValueMaps, valueMaps)
    defaults: union(defaultDefaults, defaults)
    mappingOverlay: mappingOverlay
    mappingOverlayFile: mappingOverlayFile
    alertEmail: alertEmail
    vnetEnabled: vnetEnabled
    keyVaultNameSalt: keyVaultNameSalt
    consoleAuthClientId: consoleAuthClientId
  }
}

output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = resources.outputs.functionAppName
output AZURE_STORAGE_ACCOUNT_NAME string = resources.outputs.storageAccountName
output AZURE_KEY_VAULT_NAME string = resources.outputs.keyVaultName
output P2C_MANAGED_IDENTITY_CLIENT_ID string = resources.outputs.identityClientId
