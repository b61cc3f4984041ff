"""The import contract (pyproject.toml, checked by lint-imports in `make lint` and `make test`)
covers every module: a module left out of every layer would be free to import anything."""

import pkgutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _contract():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["id"] == "layers")["layers"]
    named = [name.strip() for layer in layers for name in layer.replace("|", ":").split(":")]
    return config["root_packages"], named


def _modules(package: str):
    yield package
    for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
        yield info.name


def _layer_of(module: str, named: list[str]) -> str | None:
    return next((n for n in named if module == n or module.startswith(n + ".")), None)


def test_every_module_of_the_project_belongs_to_a_layer():
    packages, named = _contract()
    loose = [
        module
        for package in packages
        for module in _modules(package)
        if module not in packages and _layer_of(module, named) is None
    ]
    assert loose == [], f"add these modules to a layer in pyproject.toml: {loose}"
