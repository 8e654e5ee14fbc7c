"""The WSGI entry point: `gunicorn wsgi:app` (settings from MODELPORT_CONFIG)."""

from app import create_app

app = create_app()
