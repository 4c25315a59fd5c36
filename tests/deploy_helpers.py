"""The deploy files' commands, read from the files themselves, so the tests run exactly
what the image, compose and the units run (tests/test_deploy_files.py,
tests/test_scale_processes.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        name, _, args = whole.partition(" ")
        instructions.append((name.upper(), args.strip()))
    return instructions


def dockerfile_cmd(path: Path = DOCKERFILE) -> list[str]:
    """The image's CMD (exec form, the last one counts)."""
    cmds = [args for name, args in dockerfile_instructions(path) if name == "CMD"]
    return json.loads(cmds[-1])


def gateway_argv(port: int, host: str = "127.0.0.1") -> list[str]:
    """The image's CMD, listening on host:port instead of 0.0.0.0:8000 (the only change)."""
    argv = dockerfile_cmd()
    argv[argv.index("--host") + 1] = host
    argv[argv.index("--port") + 1] = str(port)
    return argv


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_command(service: str) -> list[str]:
    return list(compose()["services"][service]["command"])


def flag_values(argv: list[str]) -> dict[str, str | None]:
    """{"--loop": "uvloop", "--no-access-log": None, ...} of an argv ("--a=b" or "--a b")."""
    flags: dict[str, str | None] = {}
    for i, arg in enumerate(argv):
        if not arg.startswith("--"):
            continue
        name, eq, value = arg.partition("=")
        if eq:
            flags[name] = value
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            flags[name] = argv[i + 1]
        else:
            flags[name] = None
    return flags


def readme_uvicorn_argv() -> list[str]:
    """README's production uvicorn command (its 'Running in production' block)."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^uvicorn gateway_project\.asgi:application(.*?)(?<!\\)\n", text, re.M | re.S)
    assert match, "README has no production uvicorn line"
    return ("uvicorn gateway_project.asgi:application" + match.group(1)).replace("\\\n", " ").split()
