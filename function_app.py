"""Azure Functions entry point: builds the app and registers the triggers. Nothing else.

Two names are its contract:
- `app`, the Functions app the Azure Functions host indexes;
- `asgi_app`, the same HTTP app as a plain ASGI application, for hosts that serve ASGI
  themselves (devtools/host.py). Its lifespan shutdown closes the shared clients, so such a
  host sends it only after its queue triggers have drained.
"""

from typing import Any

import azure.functions as func

from functions import maintenance, workers
from functions.lazy_asgi import LazyAsgiApp
from functions.runtime import load_settings, make_provider, start_telemetry

settings = load_settings()
provider = make_provider(settings)
start_telemetry(None, settings)


def build_api() -> Any:
    """The HTTP app, built on its first request (FastAPI is slow to import)."""
    from functions.http_api import create_api

    api = create_api(
        provider,
        max_request_bytes=settings.max_request_bytes,
        auth=settings.auth,
        sync_targets=settings.sync_targets,
        callback_hosts=settings.callbacks.allowed_hosts,
        max_delay_seconds=settings.max_delay_seconds,
    )
    start_telemetry(api, settings)
    return api


asgi_app = LazyAsgiApp(build_api)
app = func.AsgiFunctionApp(app=asgi_app, http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(workers.create_blueprint(provider))
app.register_functions(maintenance.create_blueprint(provider))
