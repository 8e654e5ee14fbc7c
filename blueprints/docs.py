"""API docs: the OpenAPI document (`/openapi.json`, `/v2/openapi.json`) and Swagger UI (`/docs`).

Swagger UI's JavaScript and CSS are served from the `flask-swagger-ui` wheel, which bundles
swagger-ui-dist; only its files are used, not its blueprint, so the page loads nothing from any
other host and works on an air-gapped cluster.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, current_app, url_for
from markupsafe import escape

from blueprints.openapi import openapi_json

ASSETS = Path(str(files("flask_swagger_ui") / "dist"))

bp = Blueprint("docs", __name__, static_folder=ASSETS, static_url_path="/docs/assets")

# `validatorUrl: null`: Swagger UI would otherwise send the document to validator.swagger.io.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} API</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}">
  <style>body {{ margin: 0; background: #fafafa; }}</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{bundle}"></script>
  <script>
    window.onload = function () {{
      window.ui = SwaggerUIBundle({{
        url: "{spec}",
        dom_id: "#swagger-ui",
        deepLinking: true,
        validatorUrl: null,
        presets: [SwaggerUIBundle.presets.apis],
        layout: "BaseLayout"
      }});
    }};
  </script>
</body>
</html>
"""


@bp.get("/v2/openapi.json")
@bp.get("/openapi.json")  # registered first, so url_for() builds this one
def openapi() -> Response:
    """The OpenAPI 3 document of this server, generated from its routes and schemas."""
    return Response(openapi_json(current_app), mimetype="application/json")


@bp.get("/docs")
def ui() -> Response:
    """Swagger UI over `/openapi.json`, from packaged assets (works offline)."""
    asset = "docs.static"
    page = _PAGE.format(
        title=escape(current_app.extensions["modelport"].settings.server.name),
        css=url_for(asset, filename="swagger-ui.css"),
        icon=url_for(asset, filename="favicon-32x32.png"),
        bundle=url_for(asset, filename="swagger-ui-bundle.js"),
        spec=url_for("docs.openapi"),
    )
    return Response(page, mimetype="text/html")
