"""The import direction in .importlinter holds, and a wrong arrow breaks it.

The wrong arrows are written into a temporary copy of the apps (never into the work
tree), so the check that CI runs (`lint-imports` in scripts/test.sh) is proven to fail
on them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("gateway_project", "providers", "billing", "guardrails", "routing", "streaming")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
         "--no-logo", "--no-cache"],
        cwd=cwd, capture_output=True, text=True, timeout=60,
    )


@pytest.fixture
def copy_of_the_apps(tmp_path: Path) -> Path:
    for app in APPS:
        shutil.copytree(ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_code_keeps_the_import_direction():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "imports", "complaint"),
    [
        ("providers/_wrong_arrow.py", "import routing.engine", "providers is not allowed to import routing"),
        ("providers/_wrong_arrow.py", "from billing import keys", "providers is not allowed to import billing"),
        ("billing/_wrong_arrow.py", "from routing import catalog", "billing is not allowed to import routing"),
        ("billing/_wrong_arrow.py", "import streaming.consumers", "billing is not allowed to import streaming"),
        ("guardrails/_wrong_arrow.py", "from billing import models", "guardrails is not allowed to import billing"),
        ("routing/_wrong_arrow.py", "import streaming.routing", "routing is not allowed to import streaming"),
    ],
)
def test_a_wrong_arrow_fails_the_check(copy_of_the_apps: Path, module: str, imports: str, complaint: str):
    (copy_of_the_apps / module).write_text(f"{imports}\n")

    result = lint_imports(copy_of_the_apps)

    assert result.returncode != 0
    assert complaint in result.stdout
    assert module.removesuffix(".py").replace("/", ".") in result.stdout


def test_a_shared_gateway_project_module_may_not_import_an_app(copy_of_the_apps: Path):
    errors = copy_of_the_apps / "gateway_project" / "errors.py"
    errors.write_text(errors.read_text() + "\nfrom providers import types  # noqa: E402\n")

    result = lint_imports(copy_of_the_apps)

    assert result.returncode != 0
    assert "gateway_project.errors is not allowed to import providers" in result.stdout
