"""gRPC keep-alive: a pause between calls (a long embedding, an idle server) sends no ping the engine would count.

pymilvus pings every 10 s, calls or none; the Lite engine, like any gRPC server, allows a ping without data every
5 minutes and answers the third too soon with GOAWAY ENHANCE_YOUR_CALM ("too_many_pings"): two minutes into a
pause. gRPC's own trace shows each keep-alive ping, so a pause just over 10 s tells the two apart.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
PAUSE_S = 12  # longer than pymilvus' 10 s keep-alive: the old options ping once in it

CHILD = textwrap.dedent(
    """
    import sys, time
    import anyio
    from tools.embedders import OnnxMiniLM
    from tools.ingest import ingest_documents
    from tools.search import search_milvus_docs
    from tools.services import Services
    from tools.store import Store

    async def main() -> None:
        services = Services(Store(sys.argv[1]), OnnxMiniLM(), roots=[sys.argv[2]])
        print((await ingest_documents(services, ["."])).summary, file=sys.stderr, flush=True)
        paused = time.monotonic()
        while time.monotonic() - paused < float(sys.argv[3]):  # the pause is what is tested
            await anyio.sleep(0.5)
        hits = await search_milvus_docs(services, "How is data stored in milvus?")
        print("hits", len(hits.results), file=sys.stderr, flush=True)
        services.store.close()

    anyio.run(main)
    """
)


def test_a_pause_between_calls_sends_no_keepalive_ping(tmp_path: Path) -> None:
    env = {**os.environ, "GRPC_VERBOSITY": "debug", "GRPC_TRACE": "http_keepalive", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "milvus.db"), str(REPO / "data" / "milvus_docs"), str(PAUSE_S)],
        env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "hits 3" in done.stderr and "chunks added" in done.stderr
    assert "Keepalive ping cancelled" in done.stderr  # the trace is on: it shows the keep-alive timer
    for sign in ("Finish keepalive ping", "GOAWAY", "ENHANCE_YOUR_CALM", "too_many_pings"):
        assert sign not in done.stderr
