"""Generate the protobuf and gRPC modules (and .pyi stubs): `python -m protos.build`.

`make protos` runs this, and `tests/protos/test_protos.py` runs it into a temporary folder to
prove the committed files are exactly what the sources give. protoc names modules after the
proto files and imports them as top-level modules; this step renames Chassis's `model_pb2` to
`omi_pb2` (its file keeps Chassis's name, which reflection reports) and turns the imports into
package imports.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

SOURCES_DIR = Path(__file__).resolve().parent
PACKAGE = "protos"
#: Proto files, relative to SOURCES_DIR (their names are what reflection reports).
SOURCES = ("grpc_service.proto", "model_config.proto", "chassis/protos/v1/model.proto")
#: Generated module stem per source, where it differs from protoc's.
_RENAMES = {"chassis/protos/v1/model": "omi"}
_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _module(source: str) -> str:
    stem = source.removesuffix(".proto")
    return _RENAMES.get(stem, stem)


def _has_service(source: str) -> bool:
    text = (SOURCES_DIR / source).read_text(encoding="utf-8")
    return re.search(r"^service ", text, re.MULTILINE) is not None


def _import_rewrites() -> list[tuple[re.Pattern[str], str]]:
    rewrites = []
    for source in SOURCES:
        stem = source.removesuffix(".proto")
        parent, _, name = stem.rpartition("/")
        if parent:
            pattern = rf"^from {re.escape(parent.replace('/', '.'))} import {name}_pb2 as (\w+)$"
        else:
            pattern = rf"^import {name}_pb2 as (\w+)$"
        replacement = rf"from {PACKAGE} import {_module(source)}_pb2 as \1"
        rewrites.append((re.compile(pattern, re.MULTILINE), replacement))
    return rewrites


def generate(out_dir: Path) -> list[Path]:
    """Write every generated module into `out_dir`; returns the files written.

    Raises RuntimeError when protoc fails (its message is on stderr).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rewrites = _import_rewrites()
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        status = protoc.main(
            [
                "grpc_tools.protoc",
                f"--proto_path={SOURCES_DIR}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}",
                *SOURCES,
            ]
        )
        if status != 0:
            raise RuntimeError(f"protoc failed with status {status}")
        for source in SOURCES:
            stem = source.removesuffix(".proto")
            for suffix in _SUFFIXES:
                if suffix == "_pb2_grpc.py" and not _has_service(source):
                    continue
                text = (Path(tmp) / f"{stem}{suffix}").read_text(encoding="utf-8")
                for pattern, replacement in rewrites:
                    text = pattern.sub(replacement, text)
                target = out_dir / f"{_module(source)}{suffix}"
                target.write_text(text, encoding="utf-8")
                written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: `--out DIR` (default: next to the sources)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SOURCES_DIR, help="where to write modules")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
