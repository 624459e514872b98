"""requirements/production.txt is the production set of pyproject.toml, pinned with hashes, and the image uses it.

These checks read files only. .ci/production-smoke installs the lock for real and runs the stack on it.
"""

from __future__ import annotations

import re
import tomllib

from django.conf import settings
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK_TEXT = (ROOT / "requirements" / "production.txt").read_text()
# name -> (version, its hashes): one entry per "name==version \" block of the lock.
LOCK = {
    canonicalize_name(m["name"]): (Version(m["version"]), re.findall(r"--hash=sha256:([0-9a-f]{64})", m["block"]))
    for m in re.finditer(
        r"^(?P<name>[A-Za-z0-9][\w.-]*)==(?P<version>\S+)(?P<block>(?:\s*\\\n\s+--hash=\S+)*)", LOCK_TEXT, re.M
    )
}


def test_the_lock_pins_every_production_dependency_within_its_range() -> None:
    for line in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in LOCK, f"{name} is a dependency but not in the lock: run make lock"
        assert requirement.specifier.contains(LOCK[name][0], prereleases=True), (
            f"the lock pins {name} {LOCK[name][0]}, outside {requirement.specifier}: run make lock"
        )


def test_the_lock_pins_the_build_backend_the_image_builds_with() -> None:
    for line in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in LOCK and requirement.specifier.contains(LOCK[name][0]), line


def test_every_locked_package_has_a_hash_and_nothing_is_left_unpinned() -> None:
    assert len(LOCK) > 20
    for name, (version, hashes) in LOCK.items():
        assert hashes, f"{name}=={version} has no hash"
    requirement_lines = [
        line for line in LOCK_TEXT.splitlines() if line and not line.startswith((" ", "#", "-")) and "==" not in line
    ]
    assert requirement_lines == [], "every requirement in the lock is pinned with =="
    assert "--index-url" not in LOCK_TEXT and "--find-links" not in LOCK_TEXT  # no machine's package sources


def test_the_lock_holds_no_dev_or_bench_extra() -> None:
    production = {canonicalize_name(Requirement(line).name) for line in PYPROJECT["project"]["dependencies"]}
    for extra, lines in PYPROJECT["project"]["optional-dependencies"].items():
        for line in lines:
            name = canonicalize_name(Requirement(line).name)
            assert name in production or name not in LOCK, f"{name} of the {extra} extras is in the production lock"


def test_the_image_installs_the_lock_with_hashes_then_the_project_without_dependencies() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements/production.txt requirements/production.txt" in dockerfile
    lock_install = dockerfile.index("pip install --require-hashes -r requirements/production.txt")
    project_install = dockerfile.index("pip install --no-deps --no-build-isolation .")
    assert lock_install < project_install
    assert "pip check" in dockerfile[project_install:]
    # Collected with DEBUG off: with it on, no manifest is written and every page fails when DEBUG is off.
    assert re.search(r"DEBUG=0 .*manage\.py collectstatic", dockerfile, re.S)


def test_the_image_and_the_package_hold_every_app_of_the_project() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    packaged = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    local = [app for app in settings.INSTALLED_APPS if (ROOT / app.split(".")[0] / "__init__.py").exists()]
    assert "connections" in local
    for app in local:
        top = app.split(".")[0]
        assert f"COPY {top} {top}" in dockerfile, f"the Dockerfile does not copy {top}"
        assert f"{top}*" in packaged, f"[tool.setuptools.packages.find] does not include {top}"


def test_make_lock_regenerates_the_lock_and_ci_runs_the_production_smoke() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lock:", makefile, re.M) and "--output-file requirements/production.txt" in makefile
    assert "make lock" in LOCK_TEXT.split("\n\n")[0]  # the lock's header names the command that regenerates it
    ci = (ROOT / ".ci" / "run").read_text()
    tests, smoke, check = ci.index("make test PYTEST_ARGS"), ci.index(".ci/production-smoke"), ci.index("make check")
    assert tests < smoke < check
