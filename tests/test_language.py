"""Telling a text's language from its script: queries, document chunks, code."""

from __future__ import annotations

from collections import Counter

import pytest

from tools.ingest import ingest_documents
from tools.language import detect, main_languages, shares
from tools.search import document_languages, search_milvus_docs
from tools.services import Services


def test_queries_in_the_languages_users_ask_in() -> None:
    assert detect("How is data stored in milvus?") == "en"
    assert detect("밀버스는 데이터를 어떻게 저장하나요?") == "ko"
    assert detect("Milvus 如何存储数据？") == "zh"
    assert detect("Milvus のデータはどこに保存されますか") == "ja"  # kana: Japanese, though it has Han too
    assert detect("HNSW와 IVF_FLAT 인덱스의 차이는 무엇인가요?") == "ko"  # Latin product names inside Korean
    assert detect("Как Milvus хранит данные?") == "cyrillic"
    assert detect("Milvus ist eine Vektordatenbank und speichert Daten in Sammlungen.") == "latin"
    assert detect("IVF_FLAT") == "en" and detect("1234 !!") == "und"  # too short to say otherwise; no letters


def test_code_says_nothing_of_a_language_and_shares_leave_it_out() -> None:
    code = 'client.create_collection(collection_name="docs", dimension=768, metric_type="COSINE")\nres = client.search()'
    assert detect(code) == "und"
    counted = Counter({"en": 90, "und": 40, "zh": 8, "latin": 2})
    assert shares(counted) == {"en": 0.9, "zh": 0.08, "latin": 0.02}
    assert main_languages(shares(counted)) == ["en"] and main_languages({"zh": 0.6, "en": 0.4}) == ["zh", "en"]


@pytest.mark.anyio
async def test_search_says_which_language_would_find_more(services: Services) -> None:
    await ingest_documents(services, ["milvus_docs/en/faq/product_faq.md"])
    assert await document_languages(services, services.collection) == {"en": 1.0}
    korean = await search_milvus_docs(services, "밀버스는 데이터를 어떻게 저장하나요?")
    assert korean.results and korean.note == (
        "This query is in Korean and the documents are mostly in English; the same query in English usually finds more here."
    )
    assert (await search_milvus_docs(services, "How is data stored in milvus?")).note is None


@pytest.mark.anyio
async def test_texts_agents_read_put_the_note_first_and_name_scripts_as_scripts(services: Services) -> None:
    from server import render
    from tools.manage import delete_documents, describe_collection

    await ingest_documents(services, ["milvus_docs/en/faq/product_faq.md"])
    korean = render.text(await search_milvus_docs(services, "밀버스는 데이터를 어떻게 저장하나요?"))
    assert korean.index("note: This query is in Korean") < korean.index("[1] ")  # read before the passages

    report = await describe_collection(services)
    report.languages = {"en": 0.98, "latin": 0.02}
    described = render.text(report)
    assert "languages: English 98%, Latin-script text, not English 2%" in described
    assert "product_faq.md: " in described and "{" not in described.splitlines()[0]

    preview = render.text(await delete_documents(services, ["*product_faq.md"], dry_run=True))
    assert preview.startswith("Dry run, nothing was deleted: would remove ") and "Removed" not in preview
    done = render.text(await delete_documents(services, ["*product_faq.md"]))
    assert done.startswith("Removed ") and done.endswith("- milvus_docs/en/faq/product_faq.md")
