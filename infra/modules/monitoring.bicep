// Log Analytics + Application Insights (local auth off: the app sends telemetry with its
// identity), and alerts on failed records and poisoned messages to an e-mail address.
param location string
param tags object
param token string
param alertEmail string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-p2c-${token}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 90
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-p2c-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-p2c-${token}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'p2c'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// p2c logs "record <flow>/<key> failed (...)" when it writes a failure entry.
resource failureAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-p2c-failures-${token}'
  location: location
  tags: tags
  properties: {
    displayName: 'p2c: records failed'
    description: 'A record failed permanently and is in the p2cfailures table; see `p2c failures`.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'union traces, exceptions | where message has "failed (" or type has "Exception"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// The host logs this when a message reaches maxDequeueCount and moves to <queue>-poison.
resource poisonAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-p2c-poison-${token}'
  location: location
  tags: tags
  properties: {
    displayName: 'p2c: messages moved to a poison queue'
    description: 'A queue message failed on every delivery and is in <queue>-poison; see `p2c status`.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'traces | where message has "-poison"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output appInsightsId string = appInsights.id
output connectionString string = appInsights.properties.ConnectionString
