"""Azure Functions entry point: builds the app and registers the triggers. Nothing else."""

import azure.functions as func

from functions.http_api import create_api
from functions.runtime import load_settings, make_provider

settings = load_settings()
provider = make_provider(settings)

app = func.AsgiFunctionApp(
    app=create_api(provider, max_request_bytes=settings.max_request_bytes),
    http_auth_level=func.AuthLevel.FUNCTION,
)
