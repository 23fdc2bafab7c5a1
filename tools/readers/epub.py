"""EPUB 2 and 3 (.epub): the package's title (`dc:title`), then each chapter of the spine in reading order, read
as HTML is (tools/readers/html.py: `h1`-`h6` as the heading path, tables, lists, no scripts or navigation). A
chapter opens a new section, so no chapter's text runs under the last heading of the one before. A spine item
missing from the archive is skipped (the rest is read); a book with none left is unreadable. The archive is
checked as Office files are (whole, not a ZIP bomb)."""

from __future__ import annotations

import posixpath
import zipfile
from typing import Any
from urllib.parse import unquote

from tools.readers.base import Document, Reader, Unreadable, decode_text, lazy
from tools.readers.build import DocumentBuilder, office_package, one_line
from tools.readers.html import _content_root, _Walker

etree = lazy("lxml.etree")
lxml_html = lazy("lxml.html")

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_XHTML = ("application/xhtml+xml", "text/html")


class EpubReader(Reader):
    suffixes = (".epub",)

    def read(self, data: bytes, max_pages: int) -> Document:
        stream = office_package(data, "EPUB")
        try:
            with zipfile.ZipFile(stream) as book:
                names = set(book.namelist())
                opf_path = _package_path(book)
                if opf_path not in names:
                    raise Unreadable(f"not a readable EPUB (its package file {opf_path} is missing)")
                package = etree.fromstring(book.read(opf_path), etree.XMLParser(resolve_entities=False, no_network=True))
                title = one_line(package.findtext(f"{_OPF}metadata/{_DC}title") or "") or None
                base = posixpath.dirname(opf_path)
                items = {item.get("id"): item for item in package.iter(f"{_OPF}item") if item.get("id") and item.get("href")}
                builder, chapters = DocumentBuilder(), 0
                for ref in package.iter(f"{_OPF}itemref"):
                    item = items.get(ref.get("idref"))
                    if item is None or (item.get("media-type") or "") not in _XHTML:
                        continue
                    path = posixpath.normpath(posixpath.join(base, unquote(item.get("href") or "")))
                    if path not in names:
                        continue  # a spine item missing from the archive: read the rest
                    chapters += 1
                    if chapters > max_pages:
                        raise Unreadable(f"more than {max_pages} chapters (MAX_PAGES)")
                    _chapter(builder, book.read(path))
        except Unreadable:
            raise
        except Exception as exc:  # zipfile, lxml and damaged XML raise many kinds
            raise Unreadable(f"not a readable EPUB (damaged: {type(exc).__name__}: {exc})") from None
        if not chapters:
            raise Unreadable("not a readable EPUB (none of its spine's chapters is in the archive)")
        return builder.build(title)


READER = EpubReader()


def _package_path(book: zipfile.ZipFile) -> str:
    """The package (.opf) file that META-INF/container.xml names."""
    try:
        container = etree.fromstring(book.read("META-INF/container.xml"))
    except KeyError:
        raise Unreadable("not a readable EPUB (no META-INF/container.xml)") from None
    rootfile = container.find(f"{_CONTAINER}rootfiles/{_CONTAINER}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise Unreadable("not a readable EPUB (its container names no package file)")
    return str(rootfile.get("full-path"))


def _chapter(builder: DocumentBuilder, data: bytes) -> None:
    text = decode_text(data, html=True)
    if text.lstrip().startswith("<?xml"):
        text = text.split("?>", 1)[1]  # lxml refuses a str that declares its bytes' encoding
    if not text.strip():
        return
    page: Any = lxml_html.document_fromstring(text)
    body = page.find("body")
    builder.section()
    walker = _Walker(builder, drop_header_footer=False)
    walker.walk(_content_root(body if body is not None else page)[0])
    walker.flush()
