"""The image's entrypoint: run its command, or serve one model the way KServe starts a runtime.

KServe starts a ServingRuntime's container with arguments instead of a config file:
`--model_name` (the InferenceService's name) and `--model_dir` (the folder its storageUri was put
in, /mnt/models); a custom container that declares `STORAGE_URI` gets that folder there instead.
Those become the environment the config reads (`MODEL_NAME`, `MODEL_DIR`, as
deploy/kserve/configmap.yaml does), checked against that config, and `gunicorn wsgi:app` runs.
Any other first argument is a command, run as given (the image's CMD, or `docker run IMAGE sh`).

The folder may also be a storage URI (s3://, gs://, http(s)://), for a pod without KServe's
storage initializer: MODEL_DIR is then that URI, so the config's `uri: ${MODEL_DIR}/model.joblib`
names the object, which the server fetches into its cache (app/storage) when it loads.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from config.settings import (
    ConfigError,
    config_path,
    file_path,
    is_remote,
    load_settings,
    unsupported_scheme,
)

#: What the image serves; the Dockerfile's CMD is the same command.
SERVE = ("gunicorn", "wsgi:app")
_SCHEME = re.compile(r"^\w+://")


class EntrypointError(Exception):
    """KServe's arguments cannot be served: the message says which and why."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelport",
        description="Serve one model as a KServe ServingRuntime container (or run a command).",
        allow_abbrev=False,
    )
    parser.add_argument("--model_name", help="the name clients call; sets MODEL_NAME")
    parser.add_argument(
        "--model_dir",
        help="folder or storage URI holding the model (default: STORAGE_URI); sets MODEL_DIR",
    )
    return parser


def plan(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command to exec and its environment, for the container's arguments `argv`.

    Raises `EntrypointError` when the model folder is neither a local folder nor a storage URI,
    or the config does not serve that model from it; argparse exits (status 2) on an unknown
    argument.
    """
    env = dict(environ)
    if not argv:
        return list(SERVE), env
    if not argv[0].startswith("-"):
        return list(argv), env
    args = _parser().parse_args(argv)
    model_dir = args.model_dir or env.get("STORAGE_URI")
    folder = _model_folder(model_dir) if model_dir else None
    if args.model_name is not None:
        env["MODEL_NAME"] = args.model_name
    if folder is not None:
        env["MODEL_DIR"] = str(folder)
    _check_served(args.model_name, folder, env)
    return list(SERVE), env


def _model_folder(value: str) -> Path | str:
    """A local folder (resolved), or a storage URI as given (without a trailing slash)."""
    if is_remote(value):
        return value.rstrip("/")
    if _SCHEME.match(value) and not value.lower().startswith("file://"):
        raise EntrypointError(
            f"model folder {unsupported_scheme(value)}; KServe's storage initializer can put "
            "it in /mnt/models"
        )
    folder = Path(file_path(value))
    if not folder.is_dir():
        raise EntrypointError(f"model folder '{value}' is not a folder")
    return folder.resolve()


def _check_served(name: str | None, folder: Path | str | None, env: Mapping[str, str]) -> None:
    """The config must serve `name` from `folder`: ignoring them, it would serve something else."""
    try:
        settings = load_settings(environ=env)
    except ConfigError as exc:
        raise EntrypointError(str(exc)) from None
    models = [m for m in settings.models if name is None or m.name == name]
    if isinstance(folder, Path):
        models = [m for m in models if m.uri is not None and m.uri.is_relative_to(folder)]
    elif folder is not None:
        models = [m for m in models if (m.storage_uri or "").startswith(f"{folder}/")]
    if not models:
        what = f"model '{name}'" if name is not None else "model"
        where = f" from {folder}" if folder is not None else ""
        raise EntrypointError(
            f"config '{config_path(env)}' serves no {what}{where}: its models must read "
            "${MODEL_NAME} and ${MODEL_DIR}, as deploy/kserve/configmap.yaml does"
        )


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Exec the planned command in place of this process (it stays PID 1 in a container)."""
    try:
        command, env = plan(sys.argv[1:] if argv is None else argv, os.environ)
    except EntrypointError as exc:
        print(f"modelport: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
