// The operations dashboard: an Azure Monitor workbook over the app's Application Insights
// (job metrics in customMetrics, job log fields in traces.customDimensions). Its JSON is
// infra/workbook.json; the same KQL is in docs/operations.md.
param applicationInsightsName string
param location string
param tags object
param displayName string = 'Conveyor jobs'

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name is a GUID; this one is stable for the same Application Insights.
  name: guid(applicationInsights.id, 'conveyor-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsights.id
    serializedData: replace(loadTextContent('../workbook.json'), '__APPLICATION_INSIGHTS_ID__', applicationInsights.id)
  }
}

output id string = workbook.id
