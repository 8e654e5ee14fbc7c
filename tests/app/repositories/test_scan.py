"""Scanning repositories: each entry remembers its repository; one that cannot be read is a
problem line, never an exception that would stop the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import repositories
from config.settings import RepositorySettings
from tests.repositories import build_mlflow


def test_entries_remember_their_repository_and_paths_are_relative(tmp_path: Path) -> None:
    build_mlflow(tmp_path / "exports", broken=False)
    repository = RepositorySettings("mlflow", "exports", tmp_path)
    assert repositories.local_folder(repository) == tmp_path / "exports"
    (model,) = repositories.scan([repository]).models
    assert model.repository == repository and model.name == "iris-mlflow"


def test_a_reader_that_fails_only_skips_its_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(folder: Path) -> list:
        raise KeyError("surprise")

    monkeypatch.setitem(repositories.READERS, "triton", broken)
    found = repositories.scan([RepositorySettings("triton", ".", tmp_path)])
    assert found.models == ()
    assert found.problems == ("triton repository '.' could not be read: KeyError: 'surprise'",)
