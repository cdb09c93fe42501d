// The namespace and its queues. Queue definitions arrive in the official emulator's Config.json
// shape (the file the local emulator reads), so both brokers get the same properties.
param name string
param location string
param tags object

@description('Queues as in Config.json: [{Name, Properties: {MaxDeliveryCount, LockDuration, ...}}].')
param queues array

@description('The tier, from Config.json too: the local emulator enforces its message size limit.')
@allowed(['Standard', 'Premium'])
param sku string

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
    tier: sku
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [
  for definition in queues: {
    parent: namespace
    name: definition.Name
    properties: {
      maxDeliveryCount: definition.Properties.MaxDeliveryCount
      lockDuration: definition.Properties.LockDuration
      defaultMessageTimeToLive: definition.Properties.DefaultMessageTimeToLive
      deadLetteringOnMessageExpiration: definition.Properties.DeadLetteringOnMessageExpiration
      requiresDuplicateDetection: definition.Properties.RequiresDuplicateDetection
      duplicateDetectionHistoryTimeWindow: definition.Properties.DuplicateDetectionHistoryTimeWindow
      requiresSession: definition.Properties.RequiresSession
      forwardTo: empty(definition.Properties.ForwardTo) ? null : definition.Properties.ForwardTo
      forwardDeadLetteredMessagesTo: empty(definition.Properties.ForwardDeadLetteredMessagesTo) ? null : definition.Properties.ForwardDeadLetteredMessagesTo
    }
  }
]

output name string = namespace.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
