// Conveyor on Azure: a Flex Consumption Function App with a user-assigned identity, a Service
// Bus namespace with one queue per job type, a Storage account (host storage, job tables,
// claim-check blobs), Application Insights and (optionally) Azure OpenAI. No keys: every
// connection uses the identity.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region for every resource (one where Flex Consumption is offered).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the principal running azd (azd fills it in); it gets data access for the DLQ tools.')
param principalId string = ''

@description('What kind of principal principalId is: a user locally, a service principal in CI (azd fills it in).')
@allowed(['User', 'Group', 'ServicePrincipal'])
param principalType string = 'User'

@description('Give principalId data access (Service Bus, Storage, Azure OpenAI) for the operator tools.')
param grantOperatorAccess bool = true

@description('Downstream systems the sync worker may call: target name -> base URL.')
param syncTargets object = {}

@description('API keys the app accepts besides those in its key table: API_KEYS entries (hashes only, never keys).')
param apiKeys array = []

@description('Entra ID token issuer(s), comma-separated (e.g. https://login.microsoftonline.com/<tenant>/v2.0); empty: API keys only.')
param authJwtIssuer string = ''

@description('The audience(s) bearer tokens must name (the app registration\'s Application ID URI or client id).')
param authJwtAudience string = ''

@description('Hosts completion callbacks may be sent to (CALLBACK_ALLOWED_HOSTS: host, *.suffix, http://host, IP), comma-separated; empty: callbacks off.')
param callbackAllowedHosts string = ''

@secure()
@description('The HMAC-SHA256 key callbacks are signed with, 32+ random characters; needed when callbackAllowedHosts is set.')
param callbackSigningSecret string

@description('Create an Azure OpenAI account for summarize and embed jobs; false runs them on the packaged local model.')
param deployOpenAI bool = true

@description('Region of the Azure OpenAI account (model availability differs by region).')
param openAILocation string = location

param chatModel string = 'gpt-4o-mini'
param chatModelVersion string = '2024-07-18'
@minValue(1)
param chatCapacity int = 30
param embeddingModel string = 'text-embedding-3-small'
param embeddingModelVersion string = '1'
@minValue(1)
param embeddingCapacity int = 120
@allowed(['Standard', 'GlobalStandard'])
param openAIDeploymentSku string = 'GlobalStandard'

@description('Most instances the app may scale out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

// The one source of queue, table and container names (the app's setting defaults, the sample
// settings and the emulator's Config.json follow it; tests/infra checks that they do).
var names = loadJsonContent('names.json')
// The queue definitions the local emulator serves too, so local and Azure cannot drift.
var serviceBusConfig = loadJsonContent('servicebus.config.json')
var queues = serviceBusConfig.UserConfig.Namespaces[0].Queues
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = 'func-conveyor-${resourceToken}'

resource resourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: resourceGroup
  params: {
    name: 'id-conveyor-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: resourceGroup
  params: {
    workspaceName: 'log-conveyor-${resourceToken}'
    applicationInsightsName: 'appi-conveyor-${resourceToken}'
    location: location
    tags: tags
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: resourceGroup
  params: {
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: resourceGroup
  params: {
    name: 'stconveyor${take(resourceToken, 14)}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package-${take(resourceToken, 20)}'
    tableNames: names.tables
    payloadContainerName: names.containers.payloads
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: resourceGroup
  params: {
    name: 'sb-conveyor-${resourceToken}'
    location: location
    tags: tags
    queues: queues
    sku: serviceBusConfig.UserConfig.Namespaces[0].Sku
  }
}

module openAI 'modules/openai.bicep' = if (deployOpenAI) {
  name: 'openai'
  scope: resourceGroup
  params: {
    name: 'oai-conveyor-${resourceToken}'
    location: openAILocation
    tags: tags
    chatModel: chatModel
    chatModelVersion: chatModelVersion
    chatCapacity: chatCapacity
    embeddingModel: embeddingModel
    embeddingModelVersion: embeddingModelVersion
    embeddingCapacity: embeddingCapacity
    deploymentSku: openAIDeploymentSku
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: resourceGroup
  params: {
    name: functionAppName
    planName: 'plan-conveyor-${resourceToken}'
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: '${storage.outputs.blobEndpoint}${storage.outputs.deploymentContainerName}'
    serviceBusNamespace: serviceBus.outputs.fullyQualifiedNamespace
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    names: names
    syncTargets: syncTargets
    apiKeys: apiKeys
    authJwtIssuer: authJwtIssuer
    authJwtAudience: authJwtAudience
    callbackAllowedHosts: callbackAllowedHosts
    callbackSigningSecret: callbackSigningSecret
    openAIEndpoint: deployOpenAI ? openAI!.outputs.endpoint : ''
    chatDeployment: deployOpenAI ? openAI!.outputs.chatDeployment : chatModel
    chatModel: chatModel
    embeddingDeployment: deployOpenAI ? openAI!.outputs.embeddingDeployment : embeddingModel
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

module appAccess 'modules/access.bicep' = {
  name: 'access-app'
  scope: resourceGroup
  params: {
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module appOpenAIAccess 'modules/openai-access.bicep' = if (deployOpenAI) {
  name: 'access-app-openai'
  scope: resourceGroup
  params: {
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
    accountName: openAI!.outputs.name
  }
}

module operatorAccess 'modules/access.bicep' = if (grantOperatorAccess && !empty(principalId)) {
  name: 'access-operator'
  scope: resourceGroup
  params: {
    principalId: principalId
    principalType: principalType
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module operatorOpenAIAccess 'modules/openai-access.bicep' = if (deployOpenAI && grantOperatorAccess && !empty(principalId)) {
  name: 'access-operator-openai'
  scope: resourceGroup
  params: {
    principalId: principalId
    principalType: principalType
    accountName: openAI!.outputs.name
  }
}

// azd stores these in the environment (`azd env get-values`); the settings named like the
// app's own let the DLQ tools run from a workstation against this deployment.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = functionApp.outputs.uri
output ServiceBusConnection__fullyQualifiedNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output AzureWebJobsStorage__accountName string = storage.outputs.name
output AZURE_OPENAI_ENDPOINT string = deployOpenAI ? openAI!.outputs.endpoint : ''
output AI_PROVIDER string = deployOpenAI ? 'azure_openai' : 'local'
