// The Functions app on a Flex Consumption plan: the site, its app settings, SCM/FTP basic
// publishing credentials off, and (optional) App Service authentication for the console.
// siteConfig holds what the references set there, appSettings
// (Azure-Samples/azure-functions-flex-consumption-samples IaC/bicep/core/host/function.bicep),
// and minTlsVersion, which no rejection names. Flex rejects ftpsState and other App Service
// properties with ARM error 51021 (the reports quoted in Azure/terraform-azurerm-avm-res-web-site
// #345 and #360), and the runtime lives in functionAppConfig. tests/infra checks the list.
param location string
param tags object
param token string
param identityId string
param identityClientId string
param storageAccountName string
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string
param deploymentContainerName string
param appInsightsConnectionString string
param keyVaultUri string
param messageSigningKeySecretName string
param eventsKeySecretName string
param pushEnabled bool
@secure()
param eventsKey string
param appSubnetId string
param dataverseUrl string
param fnoUrl string
param fnoCompany string
param companies string
param dynamicsTenantId string
param dynamicsClientId string
param dynamicsClientSecretName string
param dataverseAppUsers string
param schedules object
param enabled object
param valueMaps object
param defaults object
param mappingOverlay string
param mappingOverlayFile string
param consoleAuthClientId string

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy is a cost choice left to the operator; a lost zone delays sync, queues keep every change.
  // checkov:skip=CKV_AZURE_211: Flex Consumption has one SKU (FC1); the plan's size is its instance memory.
  // checkov:skip=CKV_AZURE_212: the Consumption plan scales to zero on purpose (cents at idle); queues absorb a cold start.
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

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_56: App Service authentication is the consoleAuthClientId option (authsettingsV2 below); the HTTP endpoints use function keys and the rest are timer/queue triggers.
  // checkov:skip=CKV_AZURE_70: httpsOnly is set below; the check does not read Flex Consumption apps.
  // checkov:skip=CKV_AZURE_67: Flex Consumption takes no siteConfig.http20Enabled (the portal hides the setting for Flex apps); the platform decides.
  // checkov:skip=CKV_AZURE_159: same as CKV_AZURE_67.
  // checkov:skip=CKV_AZURE_17: callers authenticate with function keys; client certificates are not used.
  // checkov:skip=CKV_AZURE_212: the Consumption plan scales to zero on purpose (cents at idle); queues absorb a cold start.
  // checkov:skip=CKV_AZURE_213: health checks are an App Service plan feature; Flex Consumption has none. /api/status reports health.
  // checkov:skip=CKV_AZURE_222: as CKV_AZURE_221.
  // checkov:skip=CKV_AZURE_221: the function-key HTTP endpoints stay reachable; outbound calls to Dataverse and F&O are public endpoints either way. vnetEnabled integrates the app's outbound traffic.
  // checkov:skip=CKV_AZURE_78: Flex Consumption rejects siteConfig.ftpsState (ARM error 51021); FTP basic publishing is off (ftpCredentials below).
  // checkov:skip=CKV_AZURE_18: as CKV_AZURE_67.
  name: 'func-p2c-${token}'
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    // Key Vault references use the system-assigned identity unless this names another; the app
    // has only a user-assigned one ("Access vaults with a user-assigned identity",
    // app-service-key-vault-references.md). Without it a reference stays unresolved text.
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(appSubnetId) ? null : appSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: blobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: queueEndpoint
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: tableEndpoint
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
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
          // Empty: one company (an empty app setting is "not set").
          name: 'P2C_COMPANIES'
          value: companies
        }
        {
          name: 'P2C_AUTH_MODE'
          value: 'azure'
        }
        {
          name: 'P2C_MANAGED_IDENTITY_CLIENT_ID'
          value: identityClientId
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
          value: empty(dynamicsClientSecretName) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${dynamicsClientSecretName})'
        }
        {
          name: 'P2C_DATAVERSE_APP_USERS'
          value: dataverseAppUsers
        }
        {
          name: 'P2C_MESSAGE_SIGNING_KEY'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${messageSigningKeySecretName})'
        }
        {
          name: 'P2C_EVENTS_ENABLED'
          value: string(pushEnabled)
        }
        {
          name: 'P2C_EVENTS_KEY'
          value: pushEnabled ? '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${eventsKeySecretName})' : ''
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
          name: 'P2C_MAPPING_OVERLAY'
          value: mappingOverlay
        }
        {
          name: 'P2C_MAPPING_OVERLAY_FILE'
          value: mappingOverlayFile
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
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
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
}

// Live sync: the host checks a function key before p2c's own check of P2C_EVENTS_KEY, so the
// same value is the app's `p2c-events` host key (what Dataverse sends as its WebhookKey `code`).
resource eventsHostKey 'Microsoft.Web/sites/host/functionKeys@2024-04-01' = if (pushEnabled && !empty(eventsKey)) {
  name: '${site.name}/default/p2c-events'
  properties: {
    name: 'p2c-events'
    value: eventsKey
  }
}

// Deployments use Microsoft Entra (azd, `func azure functionapp publish`); no basic-auth
// publishing for SCM or FTP (the AVM web/site module's basicPublishingCredentialsPolicies).
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// App Service authentication with Microsoft Entra for the operator console. Authentication is
// app-wide, not per route, so unauthenticated requests are let through (AllowAnonymous): the
// timers, queues and function-key endpoints keep working, and the console itself refuses a
// request without the X-MS-CLIENT-PRINCIPAL header the platform injects for a signed-in user.
// Without a client secret the Entra provider signs in with an ID token (implicit grant).
resource auth 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(consoleAuthClientId)) {
  // checkov reads every Microsoft.Web/sites/config as the `web` config; this one is authsettingsV2,
  // which has none of the properties these checks look for (they apply to the site above).
  // checkov:skip=CKV_AZURE_13: this resource is App Service authentication itself.
  // checkov:skip=CKV_AZURE_63: not the web config; HTTP logs go to Application Insights (requests).
  // checkov:skip=CKV_AZURE_65: not the web config; detailed errors are not shown to callers.
  // checkov:skip=CKV_AZURE_66: not the web config; failed requests are in Application Insights.
  // checkov:skip=CKV_AZURE_80: not the web config; a Python app has no .NET Framework version.
  // checkov:skip=CKV_AZURE_88: not the web config; Flex Consumption has no Azure Files content share.
  // checkov:skip=CKV_AZURE_222: not the web config; see CKV_AZURE_221 on the site.
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: consoleAuthClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            consoleAuthClientId
            'api://${consoleAuthClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output name string = site.name
