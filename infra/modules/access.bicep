// Data-plane roles for one principal: the app's identity, or an operator running the DLQ tools.
param principalId string
@allowed(['User', 'Group', 'ServicePrincipal'])
param principalType string
param storageAccountName string
param serviceBusNamespaceName string
param applicationInsightsName string

// Built-in role definition ids (they are the same in every tenant).
var storageRoles = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // host storage, deployment package, payload blobs
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // job rows (with their Idempotency-Keys) and audit rows
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // the Functions host's own queues
}
// Data Owner: send, schedule, receive, settle and peek DLQs, and read queue runtime
// properties for scaling.
var serviceBusDataOwner = '090c5cfd-751d-490a-894a-3ce6f1109419'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource storageAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in items(storageRoles): {
    name: guid(storageAccount.id, principalId, role.value)
    scope: storageAccount
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.value)
      principalId: principalId
      principalType: principalType
    }
  }
]

resource serviceBusAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace.id, principalId, serviceBusDataOwner)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', serviceBusDataOwner)
    principalId: principalId
    principalType: principalType
  }
}

resource telemetryAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: principalType
  }
}
