"""Azure Functions entry point: builds the app and registers the triggers. Nothing else."""

import azure.functions as func

from functions import dead_letters, workers
from functions.http_api import create_api
from functions.runtime import load_settings, make_provider, start_telemetry

settings = load_settings()
provider = make_provider(settings)

api = create_api(provider, max_request_bytes=settings.max_request_bytes)
start_telemetry(api)
app = func.AsgiFunctionApp(app=api, http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(workers.create_blueprint(provider))
app.register_functions(dead_letters.create_blueprint(provider))
