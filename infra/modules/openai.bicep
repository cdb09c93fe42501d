// Azure OpenAI for summarize and embed jobs: one account (keys off, Entra ID only) with a chat
// and an embedding deployment. The app's identity gets "Cognitive Services OpenAI User".
param name string
param location string
param tags object
param chatModel string
param chatModelVersion string
param chatCapacity int
param embeddingModel string
param embeddingModelVersion string
param embeddingCapacity int
param deploymentSku string

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: { name: 'S0' }
  identity: { type: 'SystemAssigned' } // for customer-managed keys or private data sources later
  properties: {
    customSubDomainName: name // Entra ID tokens need the account's own subdomain
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource chat 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: chatModel
  sku: { name: deploymentSku, capacity: chatCapacity }
  properties: {
    model: { format: 'OpenAI', name: chatModel, version: chatModelVersion }
  }
}

// Deployments of one account are created one after another (the service refuses parallel ones).
resource embedding 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: embeddingModel
  dependsOn: [chat]
  sku: { name: deploymentSku, capacity: embeddingCapacity }
  properties: {
    model: { format: 'OpenAI', name: embeddingModel, version: embeddingModelVersion }
  }
}

output name string = account.name
output endpoint string = account.properties.endpoint
output chatDeployment string = chat.name
output chatModel string = chatModel
output embeddingDeployment string = embedding.name
