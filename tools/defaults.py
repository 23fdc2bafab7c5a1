"""Every default in one place, with its reason: `Settings` (env vars and flags) and the tool functions
(called directly by the CLI, tests and benches) both take their defaults from here."""

from __future__ import annotations

from typing import Final, Literal

Mode = Literal["dense", "bm25", "hybrid"]

MILVUS_URI = "./milvus_demo.db"  # the tutorial's Milvus Lite file
COLLECTION = "milvus_docs"
TOP_K = 3  # the tutorial's top 3
SEARCH_MODE: Mode = "hybrid"  # measured best on the dev questions (README, "Quality and speed")
# answer_with_qwen calls no model when the best chunk's cosine similarity is below this. 0.3 suits
# all-MiniLM-L6-v2: on the FAQ, dev questions score >= 0.36 and off-topic ones <= 0.24.
MIN_RELEVANCE = 0.3
MAX_FILE_MB = 10.0
# Globs every ingest leaves out (INGEST_EXCLUDE). None by default: navigation pages (tables of contents, indexes,
# Sphinx genindex and search pages) are recognised by their content and left out whatever their name.
INGEST_EXCLUDE: tuple[str, ...] = ()
MAX_PAGES = 2000  # a PDF or deck with more pages is skipped: about 1,000 chunks, a few minutes of embedding

# The dense index of new collections (recorded in each, so searches match it). AUTOINDEX lets Milvus choose (Lite:
# brute force; servers: an HNSW-like index); HNSW needs a server (see README, "Scale").
DENSE_INDEX: Final = "AUTOINDEX"
HNSW_M = 16  # graph links per vector: Milvus's usual default
HNSW_EF_CONSTRUCTION = 200
HNSW_EF = 64  # candidates a search keeps; raised to the result count asked for (HNSW needs ef >= limit)
IVF_NLIST = 1024  # clusters; about 4 x sqrt(rows) suits a million rows
IVF_NPROBE = 16  # clusters a search reads

# A reranker reads this many of the best candidates (DashScope takes up to 500 per request).
RERANK_CANDIDATES = 30

DASHSCOPE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"
QWEN_MODEL = "qwen-plus"  # the tutorial's model; it does not think unless asked
LLM_TIMEOUT_S = 120.0  # connect, and the longest gap between streamed chunks
LLM_MAX_RETRIES = 3  # 429, 5xx, connection errors and timeouts, with the openai client's backoff
# One whole answer, thinking included: 8,192 tokens at a slow 30 tokens/s take about 270 s.
LLM_TOTAL_TIMEOUT_S = 300.0
# Tokens one answer may generate; DashScope counts thinking and answer together (max_completion_tokens). Models
# refuse a limit above their own maximum output, and 8,192 is the smallest of those we know of (qwen-max's).
LLM_MAX_TOKENS = 8192
# research_with_qwen: rounds of retrieval, sub-questions from the plan, passages per query and collection.
RESEARCH_MAX_ROUNDS = 3
RESEARCH_MAX_SUB_QUESTIONS = 4
RESEARCH_TOP_K = 5  # more than TOP_K: the judge step drops what does not help
# Tokens one research may spend, prompts included, over every call: a plan, three rounds of judge and reflect
# over ~20 passages (~6,000 tokens each) and a write of up to LLM_MAX_TOKENS fit with room to spare.
RESEARCH_MAX_TOKENS = 64_000
# A long ingest logs a progress line this often (seconds); a shorter one logs none.
PROGRESS_LOG_S = 10.0

OcrMode = Literal["auto", "off"]
OCR: OcrMode = "auto"  # scanned PDF pages and images are read with Tesseract when it is installed
OCR_LANGUAGES = "eng"  # Tesseract's language packs, joined by "+" (eng+kor+chi_sim); each must be installed

WATCH = False  # the server keeps INGEST_ROOTS in sync (tools/watch.py)
WATCH_DEBOUNCE_MS = 500  # changes within this long are ingested together (an editor's save is several events)
FETCH_TIMEOUT_S = 30.0  # one web page, redirects included: connect, send and the whole body
