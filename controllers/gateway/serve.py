"""ASGI entrypoint for uvicorn (``kaizen gateway serve``): settings from the environment."""

from __future__ import annotations

import os

from controllers.gateway.app import GatewaySettings, create_app

app = create_app(GatewaySettings(database_url=os.environ.get("KAIZEN_DATABASE_URL")))
