"""The WSGI entry point: `gunicorn wsgi:app` (settings from MODELPORT_CONFIG)."""

from blueprints.factory import create_app

app = create_app()
