"""Lambda dependencies are installed once per requirements hash; later synths copy them without pip or network."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdk_constructs import lambda_dependencies
from cdk_constructs.lambda_dependencies import cached_dependencies, function_requirements, requirements_hash


class RecordingInstaller:
    def __init__(self) -> None:
        self.calls: list[Path] = []

    def __call__(self, requirements: Path, target: Path) -> None:
        self.calls.append(requirements)
        (target / "powertools").mkdir(parents=True)
        (target / "powertools" / "__init__.py").write_text("# installed\n")


def requirements_file(tmp_path: Path, text: str, name: str = "requirements.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_requirements_set_is_installed_once_and_then_reused(tmp_path: Path) -> None:
    # Given two functions with the same requirements (comments and blank lines aside)
    first = requirements_file(tmp_path, "aws-lambda-powertools==3.37.0\n", "a.txt")
    second = requirements_file(tmp_path, "# same\naws-lambda-powertools==3.37.0  # pinned\n\n", "b.txt")
    install = RecordingInstaller()

    # When both are bundled, twice
    entries = [cached_dependencies(path, tmp_path / "cache", install) for path in (first, second, first, second)]

    # Then pip ran once, and every bundle copies from the same entry
    assert install.calls == [first]
    assert len(set(entries)) == 1
    assert (entries[0] / "powertools" / "__init__.py").read_text() == "# installed\n"


def test_changed_requirements_get_their_own_entry(tmp_path: Path) -> None:
    assert requirements_hash("aws-lambda-powertools==3.37.0") != requirements_hash("aws-lambda-powertools==3.38.0")
    assert requirements_hash("a==1\nb==2") == requirements_hash("b==2\na==1")


def test_a_failed_install_leaves_no_entry_behind(tmp_path: Path) -> None:
    def failing(requirements: Path, target: Path) -> None:
        (target / "half").mkdir()
        raise RuntimeError("registry unreachable")

    requirements = requirements_file(tmp_path, "krcf==0.4.0\n")
    with pytest.raises(RuntimeError, match="registry unreachable"):
        cached_dependencies(requirements, tmp_path / "cache", failing)
    assert list((tmp_path / "cache").iterdir()) == []


def test_bundling_with_a_warm_cache_runs_no_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cdk_constructs.python_function import _PipForLambdaBundler

    # Given the cache already holds this function's requirements, and pip (the network) is unavailable
    package = tmp_path / "lambda" / "callback_handler"
    package.mkdir(parents=True)
    (package / "handler.py").write_text("def lambda_handler(event, context): ...\n")
    requirements = requirements_file(package, "aws-lambda-powertools==3.37.0\n")
    cached_dependencies(requirements, tmp_path / "cache", RecordingInstaller())

    def no_network(requirements: Path, target: Path) -> None:
        raise AssertionError("pip must not run for a cached requirements set")

    monkeypatch.setattr(lambda_dependencies, "pip_install", no_network)

    # When the function is bundled
    out = tmp_path / "asset"
    out.mkdir()
    bundler = _PipForLambdaBundler([package], requirements, cache_root=tmp_path / "cache")
    assert bundler.try_bundle(str(out), image=None)  # type: ignore[arg-type]

    # Then the asset holds the dependencies and the function's package
    assert (out / "powertools" / "__init__.py").is_file()
    assert (out / "callback_handler" / "handler.py").is_file()


def test_every_function_with_requirements_is_prefetched() -> None:
    names = {path.parent.name for path in function_requirements()}
    assert {"callback_handler", "anomaly_detector", "task_watchdog"} <= names
