// Log Analytics + Application Insights (local auth off: the app sends telemetry with its
// identity), and alerts on failed functions, failed records and poisoned messages to an e-mail address.
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

// The alerts, each a log query over Application Insights that fires when it returns a row.
// `requests` is excluded from sampling in host.json, and customMetrics are pre-aggregated
// (never sampled), so neither alert can miss a failure to sampling. infra/README.md lists them.
var alerts = [
  {
    name: 'function-failures'
    displayName: 'p2c: function executions failed'
    description: 'A timer or queue function ended in an exception (a poll or a message); the host retries a message up to maxDequeueCount times.'
    severity: 2
    frequency: 'PT5M'
    query: 'requests | where success == false | project timestamp, operation_Name, resultCode, operation_Id'
  }
  {
    // The name the old record-failure rule had, so an upgrade replaces its query in place.
    name: 'failures'
    displayName: 'p2c: records failed'
    description: 'A record failed permanently and is in the p2cfailures table (the p2c.failures metric); see `p2c failures`.'
    severity: 2
    frequency: 'PT15M'
    query: 'customMetrics | where name == "p2c.failures" and valueSum > 0 | project timestamp, flow = tostring(customDimensions.flow), failed = valueSum'
  }
  {
    name: 'poison'
    displayName: 'p2c: messages moved to a poison queue'
    description: 'A queue message failed on every delivery and is in <queue>-poison; see `p2c status`.'
    severity: 1
    frequency: 'PT5M'
    // The WebJobs queue listener's warning: "Message has reached MaxDequeueCount of 5. Moving message to queue '<queue>-poison'."
    query: 'traces | where message has "MaxDequeueCount" and message has "poison" | project timestamp, message'
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for alert in alerts: {
  name: 'alert-p2c-${alert.name}-${token}'
  location: location
  tags: tags
  properties: {
    displayName: alert.displayName
    description: alert.description
    severity: alert.severity
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: alert.frequency
    windowSize: alert.frequency
    criteria: {
      allOf: [
        {
          query: alert.query
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
}]

output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
output workspaceId string = workspace.id
output connectionString string = appInsights.properties.ConnectionString
