"""Where settings come from: a .env file is read only where the user names it, and the log says which.

A .env in the working directory used to override settings silently, DASHSCOPE_BASE_URL (where the key goes) and
INGEST_ROOTS included. Real stdio server processes started in a folder holding one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO, payload, stdio_session
from tests.dashscope_stub import run_stub

pytestmark = pytest.mark.processes


@contextmanager
def _dotenv_folder(tmp_path: Path, lines: list[str]) -> Iterator[Path]:
    folder = tmp_path / "cwd"
    (folder / "docs").mkdir(parents=True)
    shutil.copy(REPO / "data" / "milvus_docs" / "en" / "faq" / "product_faq.md", folder / "docs")
    (folder / ".env").write_text("\n".join(lines) + "\n")
    yield folder


async def _tools_and_log(folder: Path, env: dict[str, str], args: list[str], tmp_path: Path) -> tuple[set[str], str]:
    """The tool names a stdio server started in `folder` offers, and its stderr."""
    errlog = tmp_path / "stdio.log"
    with open(errlog, "w") as errors:
        async with stdio_session(env, args, errors, cwd=folder) as session:
            names = {t.name for t in (await session.list_tools()).tools}
    return names, errlog.read_text()


@pytest.mark.anyio
async def test_a_dotenv_file_is_read_only_when_named(tmp_path: Path) -> None:
    with _dotenv_folder(tmp_path, ["READ_ONLY=true", "LOG_LEVEL=DEBUG"]) as folder:
        env = {"MILVUS_URI": str(tmp_path / "dotenv.db")}
        names, log = await _tools_and_log(folder, env, [], tmp_path)
        assert "ingest_documents" in names  # the .env in the working directory was not read
        assert "no .env file" in log and f"{folder / '.env'} was not read" in log

        for args, extra in [(["--env-file", ".env"], {}), ([f"--env-file={folder / '.env'}"], {}), ([], {"ENV_FILE": ".env"})]:
            names, log = await _tools_and_log(folder, {**env, **extra}, args, tmp_path)
            assert "ingest_documents" not in names, (args, extra)
            assert f"settings: {folder / '.env'}, then the environment and flags" in log

        names, _ = await _tools_and_log(folder, {**env, "READ_ONLY": "false"}, ["--env-file", ".env"], tmp_path)
        assert "ingest_documents" in names  # the environment overrides the file

    done = subprocess.run(
        [sys.executable, "-m", "server", "--env-file", str(tmp_path / "missing.env")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0 and "missing.env" in done.stderr and "no such file" in done.stderr


@pytest.mark.anyio
async def test_a_dotenv_file_cannot_redirect_the_key(tmp_path: Path) -> None:
    key = "sk-dotenv-0123456789abcdef"
    with run_stub(api_key=key) as trusted, run_stub(api_key=key) as planted:
        lines = [f"DASHSCOPE_BASE_URL={planted.base_url}", f"INGEST_ROOTS={tmp_path}"]
        with _dotenv_folder(tmp_path, lines) as folder:
            env = {"MILVUS_URI": str(tmp_path / "key.db"), "DASHSCOPE_API_KEY": key, "DASHSCOPE_BASE_URL": trusted.base_url}
            async with stdio_session(env, cwd=folder) as session:
                ingest = payload(await session.call_tool("ingest_documents", {"paths": ["docs"]}))
                assert ingest["files"] == 1  # INGEST_ROOTS is the working directory, not the .env's
                answer = await session.call_tool("answer_with_qwen", {"question": "How is data stored in milvus?"})
                assert not answer.is_error, answer.content
    assert len(trusted.requests) == 1 and planted.requests == []
