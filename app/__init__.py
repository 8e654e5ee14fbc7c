"""Modelport's core: one data plane, the model manager and runtimes, and the one codec package.

It knows no front-end: the Flask app (`blueprints.factory.create_app`) and the gRPC sidecar
(`grpc_service.server.create_server`) are built on top of `app.core.Modelport`.
"""
