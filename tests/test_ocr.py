"""OCR of scanned pages with Tesseract: the manual's PDF (LibreOffice) rendered to 300 dpi images by pdftoppm and
wrapped into an image-only PDF by img2pdf, the same pages as PNG and as a two-page TIFF (Pillow); and the skip
reasons when OCR is off or Tesseract is missing."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tests.documents import MANUAL_SECTIONS, Documents, need, run
from tools.chunking import chunk_document
from tools.readers import Document, Unreadable, ocr, reader_for
from tools.readers.pdf import SCANNED


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Scans:
    return Scans(Documents(tmp_path_factory.mktemp("ocr")))


class Scans:
    def __init__(self, made: Documents) -> None:
        self.made = made

    @functools.cached_property
    def pngs(self) -> list[Path]:
        """The manual's first two pages at 300 dpi."""
        need("pdftoppm", "tesseract")
        folder = self.made.folder / "scan300"
        folder.mkdir()
        run("pdftoppm", "-r", "300", "-gray", "-f", "1", "-l", "2", "-png", self.made.manual_pdf, folder / "page")
        return sorted(folder.glob("page-*.png"))

    @functools.cached_property
    def pdf(self) -> Path:
        need("img2pdf")
        out = self.made.path("scanned-300.pdf")
        run("img2pdf", *self.pngs, "-o", out)
        return out


def read(path: Path) -> Document:
    reader = reader_for(path)
    assert reader is not None, path
    return reader.read(path.read_bytes(), 2000)


def words(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


@pytest.mark.slow  # Tesseract reads 300 dpi pages: a few seconds each on 2 cores
def test_a_scanned_pdf_is_recognised_and_keeps_its_pages(scans: Scans) -> None:
    text_layer = chunk_document(read(scans.made.manual_pdf))
    doc = read(scans.pdf)
    chunks = chunk_document(doc)
    assert len(doc.pages) == 2
    for sentence in (MANUAL_SECTIONS[0][2][0], MANUAL_SECTIONS[1][2][0]):  # on page 1 of the text-layer PDF
        [original] = [c for c in text_layer if words(sentence) in words(c.text)]
        recognised = [c for c in chunks if words(sentence) in words(c.text)]
        assert recognised, sentence
        assert (recognised[0].page_start, original.page_start) == (1, 1)
    assert {c.page_start for c in chunks} == {1, 2}


@pytest.mark.slow  # Tesseract reads 300 dpi pages: a few seconds each on 2 cores
def test_images_are_recognised_page_by_page(scans: Scans, tmp_path: Path) -> None:
    from PIL import Image

    png = read(scans.pngs[0])
    assert words(MANUAL_SECTIONS[0][2][0]) in words(png.text)
    tiff = tmp_path / "pages.tiff"
    first, second = (Image.open(p) for p in scans.pngs)
    first.save(tiff, save_all=True, append_images=[second], compression="tiff_lzw")
    doc = read(tiff)
    assert len(doc.pages) == 2
    chunks = chunk_document(doc)
    assert chunks[0].page_start == 1 and chunks[-1].page_end == 2
    assert words(MANUAL_SECTIONS[0][2][0]) in words(" ".join(c.text for c in chunks if c.page_start == 1))


def test_without_ocr_the_reason_says_what_to_do(scans: Scans, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr.SETTINGS, "mode", "off")
    for path, what in ((scans.pdf, SCANNED), (scans.pngs[0], "an image")):
        with pytest.raises(Unreadable) as raised:
            read(path)
        assert str(raised.value) == f"{what}: OCR is off (OCR=off; set OCR=auto to read it with Tesseract)"
    monkeypatch.setattr(ocr.SETTINGS, "mode", "auto")
    monkeypatch.setenv("PATH", "/nonexistent")  # no tesseract to be found
    with pytest.raises(Unreadable) as raised:
        read(scans.pdf)
    assert str(raised.value) == (
        "no text layer (a scanned PDF): OCR needs Tesseract, which is not installed: install Tesseract (Debian/Ubuntu: "
        "apt-get install tesseract-ocr; macOS: brew install tesseract) to read it"
    )


def test_a_language_without_its_data_is_named(scans: Scans, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr.SETTINGS, "languages", "eng+xyz")
    with pytest.raises(Unreadable, match=r"no data for 'xyz' of OCR_LANGUAGES='eng\+xyz'"):
        read(scans.pngs[0])
