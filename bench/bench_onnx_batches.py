"""Ingest throughput of the local ONNX embedder: one text per run against length-sorted batches (texts of similar
length together, so padding costs little) of at most N padded tokens, on the texts ingest embeds for the whole
English docs (chunk texts, then their headings, batch by batch as ingest gives them).

    nice -n 19 .venv/bin/python bench/bench_onnx_batches.py                  # budgets 0 (one at a time), 256, 512, 1024
    nice -n 19 .venv/bin/python bench/bench_onnx_batches.py --budgets 0,256

Each budget runs in a fresh process, so its peak RSS is its own (onnxruntime's arena keeps the largest run's
memory); the budgets take turns for `--rounds` rounds and each one's fastest round counts, so load from other
work on the machine weighs on all of them alike.
Agreement: the lowest cosine of each budget's vectors to one text at a time's, over every text.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from bench.bench_core import batches_as_ingest_embeds
from tools.embedders import OnnxMiniLM


def child(texts_file: Path, budget: int, out: Path) -> None:
    """Embed every batch with `budget`, save the vectors, print the seconds and peak RSS as JSON."""
    batches: list[list[str]] = json.loads(texts_file.read_text())
    embedder = OnnxMiniLM()
    embedder.batch_tokens = budget
    embedder.loaded()
    started, cpu = time.perf_counter(), time.process_time()
    vectors = [v for batch in batches for v in embedder._encode(batch)]
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    np.save(out, np.array(vectors, dtype=np.float32))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": took, "cpu_s": cpu, "rss_mb": rss}))


def run_child(texts_file: Path, budget: int, out: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(texts_file), "--budgets", str(budget), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="0,256,512,1024", help="padded tokens per run; 0: one text at a time")
    parser.add_argument("--batches", type=int, default=0, help="only the first N ingest batches (0: all)")
    parser.add_argument("--rounds", type=int, default=2, help="turns each budget takes; its fastest counts")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, int(args.budgets), args.out)
        return
    budgets = [0, *(int(b) for b in args.budgets.split(",") if int(b))]
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(SHARED / "corpus" / "milvus_docs_en_2.4.tar.gz") as tar:
            tar.extractall(f"{tmp}/docs", filter="data")
        chunks, batches = batches_as_ingest_embeds(Path(f"{tmp}/docs"))
        if args.batches:
            batches = batches[: args.batches]
            chunks = sum(len(b) for b in batches) // 2  # each chunk's text and its heading
        texts = sum(len(b) for b in batches)
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(batches))
        runs: dict[int, list[dict[str, float]]] = {b: [] for b in budgets}
        for _ in range(args.rounds):
            for b in budgets:
                runs[b].append(run_child(texts_file, b, Path(tmp) / f"b{b}.npy"))
        reference = np.load(Path(tmp) / "b0.npy")
        agreement = {b: float((np.load(Path(tmp) / f"b{b}.npy") * reference).sum(axis=1).min()) for b in budgets}
    best = {b: min(r["seconds"] for r in runs[b]) for b in budgets}
    part = f", first {args.batches} batches" if args.batches else ""
    print(f"whole English docs{part}: {chunks} chunks, {texts} texts (chunks and their headings), {len(batches)} batches")
    print(f"  {'run':<31} {'texts/s':>8} {'chunks/s':>8} {'peak RSS MB':>11} {'min cosine':>10}  rounds: wall s (CPU s)")
    for b in budgets:
        label = f"length-sorted, {b} tokens/run" if b else "one text at a time"
        rounds = " / ".join(f"{r['seconds']:.1f} ({r['cpu_s']:.1f})" for r in runs[b])
        print(
            f"  {label:<31} {texts / best[b]:>8.1f} {chunks / best[b]:>8.1f} {max(r['rss_mb'] for r in runs[b]):>11.0f}"
            f" {agreement[b]:>10.6f}  {rounds}  ({best[0] / best[b]:.2f}x one at a time)"
        )


if __name__ == "__main__":
    main()
