"""Outside clients the tests drive the server with, installed on first use under `.cache/` and reused after:
Qwen-Agent in its own venv (it needs `mcp<2`), and Node 22 with the MCP Inspector and the conformance suite.

`python -m tests.external_tools` installs both ahead of time (for CI).
"""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache"
QWEN_AGENT_VENV = CACHE / "qwen-agent"
NODE_PREFIX = CACHE / "node22"

QWEN_AGENT_REQUIREMENTS = REPO / "tests" / "qwen-agent-requirements.txt"
QWEN_AGENT_IMPORTS = "import mcp, qwen_agent.tools.mcp_manager, qwen_agent.agents"
# `node` ships Node itself as an npm package; the Inspector needs Node >= 22.19.
NODE_PACKAGES = ("node@22.23.3", "@modelcontextprotocol/inspector@2.12.0", "@modelcontextprotocol/conformance@0.1.16")


class ToolUnavailable(RuntimeError):
    """An outside client could not be installed here (no registry, no npm)."""


def qwen_agent_python() -> Path:
    """The Python of a venv where Qwen-Agent imports (the one `make test` makes), created when missing or broken."""
    python = QWEN_AGENT_VENV / "bin" / "python"
    if python.exists() and _run([str(python), "-c", QWEN_AGENT_IMPORTS]).returncode == 0:
        return python
    shutil.rmtree(QWEN_AGENT_VENV, ignore_errors=True)
    venv.create(QWEN_AGENT_VENV, with_pip=True)
    _install([str(python), "-m", "pip", "install", "-q", "-r", str(QWEN_AGENT_REQUIREMENTS)], "Qwen-Agent")
    (QWEN_AGENT_VENV / ".installed").touch()
    return python


def node_bin() -> Path:
    """The folder with `node` (22), `inspector` and `conformance`, installed from npm when missing or out of date."""
    bin_dir = NODE_PREFIX / "node_modules" / ".bin"
    stamp = NODE_PREFIX / ".installed"
    packages = "\n".join(NODE_PACKAGES)
    installed = stamp.exists() and stamp.read_text() == packages
    if installed and all((bin_dir / name).exists() for name in ("node", "inspector", "conformance")):
        return bin_dir
    npm = shutil.which("npm")
    if npm is None:
        raise ToolUnavailable("npm is not installed, so Node 22 and the MCP Inspector cannot be fetched")
    NODE_PREFIX.mkdir(parents=True, exist_ok=True)
    _install([npm, "install", "--prefix", str(NODE_PREFIX), "--no-audit", "--no-fund", *NODE_PACKAGES], "Node 22")
    stamp.write_text(packages)
    return bin_dir


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=600)


def _install(command: list[str], what: str) -> None:
    done = _run(command)
    if done.returncode != 0:
        raise ToolUnavailable(f"{what} could not be installed ({' '.join(command)}):\n{done.stderr[-2000:]}")


if __name__ == "__main__":
    print(qwen_agent_python())
    print(node_bin())
