// "Cognitive Services OpenAI User" on the Azure OpenAI account: call deployments, nothing more.
param principalId string
@allowed(['User', 'Group', 'ServicePrincipal'])
param principalType string
param accountName string

var openAIUser = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: accountName
}

resource openAIAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, openAIUser)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', openAIUser)
    principalId: principalId
    principalType: principalType
  }
}
