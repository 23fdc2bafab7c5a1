"""The human CLI and the server's settings handling, run as real subprocesses on real Milvus Lite files."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from server.settings import GROUPS, Group, Settings
from tests.conftest import run_cli
from tests.dashscope_stub import run_stub
from tools.globs import matches


def _run(module: str, env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(env, *args, stdin=stdin, module=module)


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return _run("server.cli", env, *args, stdin=stdin)


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # stdout is the JSON document and nothing else


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MILVUS_URI": str(tmp_path / "cli.db"), **extra}


@pytest.mark.slow
def test_ingest_search_info_delete_and_errors(docs: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, INGEST_ROOTS=str(docs), COLUMNS="200")
    fresh = _cli(env, "search", "How is data stored in milvus?")
    assert fresh.returncode == 1 and fresh.stdout == ""
    assert "`milvus-qwen ingest PATH`" in fresh.stderr and "ingest_documents" not in fresh.stderr  # commands, not tools

    (docs / "milvus_docs" / "en" / "notes.bin").write_bytes(b"\x00\x01binary")
    preview = _cli(env, "ingest", "milvus_docs/en", "--dry-run", "--exclude", "**/troubleshooting.md")
    assert preview.returncode == 0 and preview.stdout.startswith("Dry run, nothing changed"), preview.stderr
    assert re.search(r"would add \S*product_faq\.md \(\d+ chunks\)", preview.stdout)
    assert re.search(r"skipped \S*troubleshooting\.md: excluded by \*\*/troubleshooting\.md", preview.stdout)
    ingest = _cli(env, "ingest", "milvus_docs/en")
    assert ingest.returncode == 0, ingest.stderr
    assert "4 document(s) in milvus_docs" in ingest.stdout  # the result's summary
    assert re.search(r"skipped \S*notes\.bin: ", ingest.stdout)  # and each skipped file with its reason

    found = _cli(env, "search", "How is data stored in milvus?", "-k", "3")
    assert found.returncode == 0 and "Where does Milvus store data?" in found.stdout

    narrow = _cli({**env, "COLUMNS": "60"}, "search", "How is data stored in milvus?", "-k", "3")
    assert narrow.returncode == 0 and max(len(line) for line in narrow.stdout.splitlines()) <= 60, narrow.stdout

    info = _cli(env, "info")
    assert "4 sources" in info.stdout and "product_faq.md" in info.stdout

    deleted = _cli(env, "delete", "*/troubleshooting.md")
    assert deleted.returncode == 0 and "removed 8 chunks of 1 sources" in deleted.stdout

    no_key = _cli(env, "ask", "How is data stored in milvus?")
    assert no_key.returncode == 2 and "DASHSCOPE_API_KEY" in no_key.stderr and no_key.stdout == ""  # a setting missing
    outside = _cli(env, "ingest", str(tmp_path))
    assert outside.returncode == 1 and "outside the folders" in outside.stderr
    no_match = _cli(env, "delete", "nothing-like-this.md")
    assert no_match.returncode == 1 and "`milvus-qwen info` lists them" in no_match.stderr


@pytest.mark.slow
def test_json_on_every_command_and_a_dry_run(docs: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, INGEST_ROOTS=str(docs))
    ingested = _json(_cli(env, "ingest", "milvus_docs/en", "--json"))
    assert ingested["files"] == 4 and ingested["summary"].startswith("4 document(s)")
    stored = _json(_cli(env, "--json", "ingest-text", "notes/today.md", stdin="# Today\n\nMilvus met Qwen.\n"))
    assert stored["files"] == 1 and stored["chunks_added"] == 1

    found = _json(_cli(env, "search", "How is data stored in milvus?", "-k", "2", "--json"))
    assert [hit["rank"] for hit in found["results"]] == [1, 2] and found["mode"] == "hybrid"
    assert {"score", "source", "heading", "text", "chunk_id", "citation"} <= set(found["results"][0])

    info = _json(_cli(env, "info", "--json"))
    assert info["sources"] == 5 and info["chunks"] > 60
    assert {item["source"] for item in info["listed"]} >= {"notes/today.md"}

    dry = _json(_cli(env, "delete", "**/*_faq.md", "--dry-run", "--json"))
    assert dry["dry_run"] is True and len(dry["sources_removed"]) == 3 and dry["chunks_removed"] > 0
    assert _json(_cli(env, "info", "--json"))["chunks"] == info["chunks"]  # nothing was deleted
    people = _cli(env, "delete", "**/*_faq.md", "--dry-run")
    assert people.returncode == 0 and "would remove" in people.stdout and "nothing was removed" in people.stdout

    gone = _json(_cli(env, "--json", "delete", "notes/today.md"))
    assert gone == {"collection": "milvus_docs", "sources_removed": ["notes/today.md"], "chunks_removed": 1, "dry_run": False}
    assert _json(_cli(env, "info", "--json"))["sources"] == 4

    failed = _cli(env, "search", "", "--json")
    assert failed.returncode == 1 and failed.stdout == "" and "query is empty" in failed.stderr


@pytest.mark.slow
def test_info_shows_the_root_when_several_roots_hold_a_name(tmp_path: Path) -> None:
    roots = [tmp_path / "one", tmp_path / "two"]
    for n, root in enumerate(roots):
        (root / "d").mkdir(parents=True)
        (root / "d" / "a.md").write_text(f"# Root {n}\n\nText kept under root {n}.\n")
    env = _env(tmp_path, INGEST_ROOTS=":".join(map(str, roots)), COLUMNS="200")
    assert _cli(env, "ingest", *(str(root / "d") for root in roots)).returncode == 0
    info = _cli(env, "info")
    assert info.returncode == 0, info.stderr
    rows = [line for line in info.stdout.splitlines() if "d/a.md" in line]
    assert len(rows) == 2 and str(roots[0]) in rows[0] and str(roots[1]) in rows[1], info.stdout
    dropped = _cli({**env, "LOG_LEVEL": "debug"}, "drop", "milvus_docs")  # a lower-case level is a level too
    assert dropped.returncode == 0 and "dropped milvus_docs (2 chunks)" in dropped.stdout, dropped.stderr
    again = _cli(env, "drop", "milvus_docs")
    assert again.returncode == 1 and "There is no collection 'milvus_docs' to drop" in again.stderr


@pytest.mark.slow
def test_ask_passes_the_source_filter_to_retrieval(docs: Path, tmp_path: Path) -> None:
    with run_stub() as stub:
        env = _env(tmp_path, INGEST_ROOTS=str(docs), DASHSCOPE_API_KEY=stub.api_key, DASHSCOPE_BASE_URL=stub.base_url)
        assert _cli(env, "ingest", "milvus_docs/en").returncode == 0
        question = "How is data stored in milvus?"  # best answered by product_faq.md
        glob = "**/operational_faq.md"
        result = _json(_cli(env, "ask", question, "--source", glob, "-k", "3", "--json"))
        assert result["sources"] and all(matches(s["source"], glob) for s in result["sources"]), result["sources"]
        prompt = (stub.requests[-1] or {})["messages"][-1]["content"]
        cited = re.findall(r"^\[\d+\] (\S+)", prompt, flags=re.MULTILINE)
        assert cited and all(c.endswith("operational_faq.md") for c in cited), cited

        people = _cli(env, "ask", question, "--source", glob)
        assert people.returncode == 0, people.stderr
        assert "operational_faq.md" in people.stdout and "product_faq.md" not in people.stdout


BAD = {"SEARCH_MODE": "fuzzy", "MAX_FILE_MB": "-1", "TRANSPORT": "ftp", "LLM_DIALECT": "x"}


@pytest.mark.processes
@pytest.mark.parametrize(("module", "prog", "args"), [("server", "milvus-qwen-mcp", []), ("server.cli", "milvus-qwen", ["info"])])
def test_a_bad_setting_is_one_line_naming_it_with_status_2(tmp_path: Path, module: str, prog: str, args: list[str]) -> None:
    done = _run(module, _env(tmp_path, SEARCH_MODE="fuzzy"), *args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"{prog}: SEARCH_MODE='fuzzy' is not one of dense, bm25, hybrid\n"

    several = _run(module, _env(tmp_path, **BAD), *args)
    assert several.returncode == 2
    assert sorted(several.stderr.splitlines()) == [
        f"{prog}: LLM_DIALECT='x' is not one of dashscope, chat_template_kwargs, none",
        f"{prog}: MAX_FILE_MB='-1' is not a number greater than 0",
        f"{prog}: SEARCH_MODE='fuzzy' is not one of dense, bm25, hybrid",
        f"{prog}: TRANSPORT='ftp' is not one of stdio, streamable-http",
    ]
    assert not (tmp_path / "cli.db").exists()

    unusable = _run(module, _env(tmp_path, EMBEDDING_PROVIDER="openai", RERANK_PROVIDER="none"), *args)
    assert unusable.returncode == 2 and unusable.stdout == ""
    assert unusable.stderr == f"{prog}: EMBEDDING_PROVIDER=openai needs EMBEDDING_BASE_URL\n"


@pytest.mark.processes
def test_server_flags_are_named_as_flags(tmp_path: Path) -> None:
    done = _run("server", _env(tmp_path), "--search-mode", "fuzzy", "--port=0")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "milvus-qwen-mcp: --search-mode='fuzzy' is not one of dense, bm25, hybrid",
        "milvus-qwen-mcp: --port='0' is not a whole number from 1 to 65535",
    ]
    secret = _run("server", _env(tmp_path, MILVUS_TOKEN="s3cret-token"), "--no-such-flag", "s3cret-value")
    assert secret.returncode == 2 and secret.stderr.startswith("milvus-qwen-mcp: unrecognized arguments: --no-such-flag (")
    assert len(secret.stderr.splitlines()) == 1 and "s3cret" not in secret.stderr

    dotenv = tmp_path / "settings.env"
    dotenv.write_text("MAX_PAGES=0\n")
    from_file = _run("server", _env(tmp_path), "--env-file", str(dotenv))
    assert from_file.returncode == 2
    assert from_file.stderr == f"milvus-qwen-mcp: MAX_PAGES='0' is not a whole number of 1 or more (in {dotenv})\n"


@pytest.mark.processes
def test_help_reads_like_a_person_wrote_it(tmp_path: Path) -> None:
    done = _run("server", _env(tmp_path, COLUMNS="100", DASHSCOPE_API_KEY="sk-never-shown-1234"), "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: milvus-qwen-mcp")
    text = " ".join(done.stdout.split())
    for noise in ("SecretStr", "lambda", "null", "default factory", "{str", "list[", "sk-never-shown"):
        assert noise not in text, noise
    for name, field in Settings.model_fields.items():  # every setting: its flag, its variable, its description
        assert f"--{name.replace('_', '-')}" in text and name.upper() in text, name
        assert " ".join((field.description or "").split())[:40] in text, name
    for group in GROUPS:
        assert f"\n{group.title}:\n" in done.stdout
    assert "--search-mode {dense,bm25,hybrid}" in text and "[SEARCH_MODE; default: hybrid]" in text
    assert "--max-file-mb MB" in text and "default: 10]" in text
    assert "--read-only, --no-read-only" in text and "[READ_ONLY; default: off]" in text


def test_every_setting_is_in_one_help_group() -> None:
    for name, field in Settings.model_fields.items():
        marks = [rule for rule in field.metadata if isinstance(rule, Group)]
        assert len(marks) == 1 and marks[0] in GROUPS, name


def test_ingest_roots_given_twice_or_joined_are_the_same_roots(tmp_path: Path) -> None:
    one, two = tmp_path / "a,b", tmp_path / "c"  # a comma is a legal character in a folder's name
    repeated = Settings.load(["--ingest-roots", str(one), "--ingest-roots", str(two)]).ingest_roots
    joined = Settings.load([f"--ingest-roots={one}:{two}"]).ingest_roots
    assert repeated == joined == [one, two]


@pytest.mark.processes
def test_cli_speaks_cli_refuses_writes_when_read_only_and_names_the_store(tmp_path: Path) -> None:
    env = _env(tmp_path)
    bad_k = _cli(env, "search", "vector index", "-k", "0")
    assert bad_k.returncode == 2 and "argument -k/--top-k: must be a whole number from 1 to" in bad_k.stderr
    assert "top_k" not in bad_k.stderr.replace("TOP_K", "").replace("--top-k", "")
    bad_budget = _cli(env, "ask", "hi", "--think", "--budget", "lots")
    assert bad_budget.returncode == 2 and "argument --budget: must be a whole number" in bad_budget.stderr

    no_key = _cli(env, "ask", "How is data stored in milvus?")
    assert no_key.returncode == 2
    assert no_key.stderr == (
        "milvus-qwen: `milvus-qwen ask` needs DASHSCOPE_API_KEY, in the environment or in the .env file ENV_FILE names\n"
    )

    read_only = {**env, "READ_ONLY": "true"}
    for args in (["ingest-text", "notes.md"], ["ingest", "."], ["delete", "notes.md"], ["drop", "milvus_docs"]):
        refused = _cli(read_only, *args, stdin="# Notes\n\nSomething worth keeping.\n")
        assert refused.returncode == 2, (args, refused.stderr)
        assert f"READ_ONLY is on, and `milvus-qwen {args[0]}` changes the store" in refused.stderr
    assert not (tmp_path / "cli.db").exists()  # nothing was opened, so nothing was made

    missing = _cli(env, "search", "vector index")
    assert missing.returncode == 1 and str((tmp_path / "cli.db").resolve()) in missing.stderr
