// The Function App on Flex Consumption (FC1), Linux, Python 3.11. Every connection is made
// with the user-assigned identity: the settings name endpoints and a client id, never a key.
param name string
param planName string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerUrl string
param serviceBusNamespace string
param applicationInsightsConnectionString string
@description('Queue, table and container names (infra/names.json).')
param names object
param syncTargets object
@description('Azure OpenAI endpoint; empty runs summarize and embed on the packaged local model.')
param openAIEndpoint string
param chatDeployment string
param chatModel string
param embeddingDeployment string
@description('API keys as API_KEYS entries: {id, owner, sha256, admin?, submits_per_minute?}. Hashes only.')
param apiKeys array
@description('Entra ID issuer(s) and audience(s) of bearer tokens (comma-separated); empty: API keys only.')
param authJwtIssuer string
param authJwtAudience string
@description('CALLBACK_ALLOWED_HOSTS: where completion callbacks may go; empty: callbacks off.')
param callbackAllowedHosts string
@secure()
param callbackSigningSecret string
param maximumInstanceCount int
param instanceMemoryMB int

// App settings the code reads (docs/operations.md#settings). Queue names, table names and
// retry policy keep their defaults unless set here.
var appSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  ServiceBusConnection__fullyQualifiedNamespace: serviceBusNamespace
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // host.json sets "telemetryMode": "OpenTelemetry". The worker hands each invocation the
  // host's trace context (one trace for host and app spans); the app configures the one
  // exporter itself (shared/telemetry.py), so the worker's own exporter stays off.
  PYTHON_ENABLE_OPENTELEMETRY: 'true'
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'false'
  PYTHON_ENABLE_INIT_INDEXING: '1'
  SUMMARIZE_QUEUE_NAME: names.queues.summarize
  EMBED_QUEUE_NAME: names.queues.embed
  SYNC_QUEUE_NAME: names.queues.sync
  CALLBACKS_QUEUE_NAME: names.queues.callbacks
  SUMMARIZE_HIGH_QUEUE_NAME: names.queues.summarizeHigh
  EMBED_HIGH_QUEUE_NAME: names.queues.embedHigh
  SYNC_HIGH_QUEUE_NAME: names.queues.syncHigh
  JOBS_TABLE_NAME: names.tables.jobs
  AUDIT_TABLE_NAME: names.tables.audit
  PAYLOAD_CONTAINER_NAME: names.containers.payloads
  SYNC_TARGETS: string(syncTargets)
  RETRY_BASE_SECONDS: '2'
  RETRY_MAX_SECONDS: '300'
  RETRY_MAX_ATTEMPTS: '5'
  JOB_TIMEOUT_SECONDS: '300'
  SUBMIT_BUDGET_SECONDS: '4'
  QUEUED_GRACE_SECONDS: '120'
  RUNNING_MARK_DELAY_SECONDS: '1'
  MAX_DELAY_SECONDS: '604800'
  AI_PROVIDER: empty(openAIEndpoint) ? 'local' : 'azure_openai'
  AZURE_OPENAI_ENDPOINT: openAIEndpoint
  AZURE_OPENAI_API_VERSION: '2024-10-21'
  AZURE_OPENAI_CHAT_DEPLOYMENT: chatDeployment
  AZURE_OPENAI_CHAT_MODEL: chatModel
  AZURE_OPENAI_EMBEDDING_DEPLOYMENT: embeddingDeployment
  AZURE_OPENAI_CLIENT_ID: identityClientId
  AZURE_OPENAI_TIMEOUT_SECONDS: '60'
  AZURE_OPENAI_MAX_RETRIES: '0'
  SUMMARY_CHUNK_TOKENS: '3000'
  EMBEDDING_CACHE: 'on'
  EMBEDDING_CACHE_TABLE_NAME: names.tables.embeddingCache
  API_KEYS_TABLE_NAME: names.tables.apiKeys
  RATE_LIMITS_TABLE_NAME: names.tables.rateLimits
  SWITCHES_TABLE_NAME: names.tables.switches
  INTAKE_CACHE_SECONDS: '5'
  CALLBACK_ALLOWED_HOSTS: callbackAllowedHosts
  CALLBACK_SIGNING_SECRET: callbackSigningSecret
  CALLBACK_MAX_ATTEMPTS: '8'
  CALLBACK_RETRY_BASE_SECONDS: '5'
  CALLBACK_RETRY_MAX_SECONDS: '600'
  CALLBACK_TIMEOUT_SECONDS: '10'
  AUTH_MODE: 'on'
  API_KEYS: string(apiKeys)
  AUTH_JWT_ISSUER: authJwtIssuer
  AUTH_JWT_AUDIENCE: authJwtAudience
  AUTH_ADMIN_ROLE: 'Conveyor.Admin'
  RATE_LIMIT_SUBMITS_PER_MINUTE: '10'
  QUEUE_DEPTH_LIMIT: '10000'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
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
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: [for setting in items(appSettings): { name: setting.key, value: setting.value }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output name string = site.name
output uri string = 'https://${site.properties.defaultHostName}/api'
