"""HTML (.html, .htm), on lxml.html (BSD; libxml2's forgiving HTML parser): the main content only, `h1`-`h6` as
the heading path, `<title>` as the title.

The main content is the page's one `<main>` (or `role="main"`), else its one `<article>`, else `<body>`. Inside
it, what is not content is dropped: scripts, styles, navigation, asides, forms, hidden elements, and elements
whose class marks a cookie banner, breadcrumbs, a table of contents or a sidebar; `<header>` and `<footer>`
too when the content is the whole body (an article's own header holds its title). Paragraphs and other blocks
are separated by blank lines, list items are lines starting with "- ", tables are a row a line with cells
joined by " | ", and `<pre>` keeps its line breaks and indentation.

A page that is only navigation (a generated index, a search page, a list of links and little else: Sphinx's
genindex, py-modindex, search and contents pages, MkDocs' and Docusaurus' search) gives no text, and is counted as
navigation.

The encoding: a byte-order mark, else the page's `<meta charset>`, else as for plain text.
"""

from __future__ import annotations

import re
from typing import Any

from tools.readers.base import Document, Reader, Unreadable, check_time, decode_text, lazy
from tools.readers.build import DocumentBuilder, one_line

_DROP = {
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed", "nav", "aside",
    "form", "button", "input", "select", "textarea", "label", "dialog", "head", "title", "meta", "link",
}  # fmt: skip
_DROP_AT_BODY = {"header", "footer"}
_DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog"}
_DROP_CLASS = re.compile(
    r"(?:^|[\s_-])(?:cookies?|consent|breadcrumbs?|skip-?link|sidebar|toc|table-of-contents|share|social)(?:$|[\s_-])",
    re.IGNORECASE,
)
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {
    "p", "div", "section", "article", "main", "body", "blockquote", "figure", "figcaption", "dl", "dt", "dd",
    "address", "details", "summary", "center", "header", "footer", "hr", "caption", "li", "ul", "ol", "table",
    "pre", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_PERMALINK_SIGNS = "¶§🔗"  # the anchor signs doc generators put after a heading (Sphinx: ¶), and " #"
MAX_DEPTH = 2048  # libxml2's nesting limit with huge_tree (256 without): deeper, the rest of the page is lost


# Generated indexes and search pages: Sphinx (indextable, search-results), MkDocs (mkdocs-search-results),
# Docusaurus (its search page's class).
_NAVIGATION_MARKS = " | ".join(
    (
        ".//table[contains(concat(' ', @class, ' '), ' indextable ')]",
        ".//*[contains(@class, 'genindex-jumpbox')]",
        ".//*[@id='search-results' or @id='mkdocs-search-results']",
        ".//*[contains(@class, 'searchQueryInput') or contains(@class, 'search-page')]",
    )
)
_MIN_LINKS = 15  # a page with fewer links is not a table of contents, whatever their share
_LINKED_SHARE = 0.8  # of the content's characters in links: measured on the Python docs' toctree pages

lxml_html = lazy("lxml.html")  # loaded on the first HTML read
etree = lazy("lxml.etree")


class HtmlReader(Reader):
    suffixes = (".html", ".htm")

    def read(self, data: bytes, max_pages: int) -> Document:
        text = _XML_DECLARATION.sub("", decode_text(data, html=True))  # lxml refuses a str that declares bytes
        builder = DocumentBuilder()
        if not text.strip():
            return builder.build(None)
        try:
            parser = lxml_html.HTMLParser(huge_tree=True)
            page = lxml_html.document_fromstring(text, parser=parser)
        except (etree.ParserError, ValueError):  # nothing parseable: "Document is empty"
            return builder.build(None)
        if any("Excessive depth" in error.message for error in parser.error_log):  # libxml2 stopped reading there
            raise Unreadable(f"HTML nested more than {MAX_DEPTH} elements deep: the parser stops there, losing the rest")
        title = page.findtext(".//title")
        body = page.find("body")
        root, at_body = _content_root(body if body is not None else page)
        if _navigation_only(root):
            return builder.build(one_line(title or "") or None, navigation=1)
        walker = _Walker(builder, drop_header_footer=at_body)
        walker.walk(root)
        walker.flush()
        return builder.build(one_line(title or "") or None)


READER = HtmlReader()


def _navigation_only(root: Any) -> bool:
    """A page that is only navigation: a generated index (Sphinx's genindex and module index), a search page
    (Sphinx, MkDocs, Docusaurus), or a list of links and little else (a table of contents: Sphinx's contents.html,
    a section's index page)."""
    if root.xpath(_NAVIGATION_MARKS):
        return True
    links = root.findall(".//a")
    if len(links) < _MIN_LINKS:
        return False
    total = len(one_line(root.text_content()))
    linked = sum(len(one_line(a.text_content())) for a in links)
    return total > 0 and linked >= _LINKED_SHARE * total


def _content_root(body: Any) -> tuple[Any, bool]:
    """(the element holding the main content, whether it is the whole body)."""
    for found in (body.findall(".//main"), body.xpath(".//*[@role='main']"), body.findall(".//article")):
        if len(found) == 1:
            return found[0], False
    return body, True


def _tag(node: Any) -> str | None:
    """An element's lower-case tag; None for comments and processing instructions."""
    return node.tag.lower() if isinstance(node.tag, str) else None


class _Walker:
    def __init__(self, builder: DocumentBuilder, drop_header_footer: bool) -> None:
        self.out = builder
        self.drop_header_footer = drop_header_footer
        self.inline: list[str] = []
        self.depth = 0  # list nesting
        self.item = ""  # the marker waiting for its list item's first text

    def flush(self) -> None:
        text = one_line("".join(self.inline))
        self.inline = []
        if text:
            self.out.block(self.item + text, item=bool(self.item))
            self.item = "  " * max(self.depth - 1, 0) + "  " if self.item else ""  # further blocks of the same item

    def skip(self, node: Any, tag: str) -> bool:
        if tag in _DROP or (self.drop_header_footer and tag in _DROP_AT_BODY):
            return True
        if (node.get("role") or "").lower() in _DROP_ROLES:
            return True
        if node.get("hidden") is not None or node.get("aria-hidden") == "true":
            return True
        if _HIDDEN_STYLE.search(node.get("style") or ""):
            return True
        return bool(_DROP_CLASS.search(node.get("class") or ""))

    def walk(self, root: Any) -> None:
        """The content under `root`, in document order, with a stack of its own rather than recursion: a page may
        nest elements 2,048 deep, past Python's recursion limit."""
        stack: list[tuple[str, Any]] = [("children", root)]
        while stack:
            kind, item = stack.pop()
            if kind == "children":
                if item.text:
                    self.inline.append(item.text)
                todo: list[tuple[str, Any]] = []
                for child in item:
                    tag = _tag(child)
                    if tag is not None and not self.skip(child, tag):
                        todo.append(("element", child))
                    if child.tail:
                        todo.append(("text", child.tail))
                stack.extend(reversed(todo))
            elif kind == "text":
                self.inline.append(item)
            elif kind == "element":
                stack.extend(self.element(item, _tag(item) or ""))
            else:  # "end": what closes an element, after its children
                item()

    def element(self, node: Any, tag: str) -> list[tuple[str, Any]]:
        """Handle an element's start; what to do next, last first: its children, then what closes it."""
        if tag in _HEADINGS:
            self.flush()
            self.out.heading(_HEADINGS[tag], without_permalinks(node.text_content()))
        elif tag == "br":
            self.inline.append("\n")
        elif tag == "pre":
            self.flush()
            self.out.block(node.text_content().strip("\n"))
        elif tag == "table":
            self.flush()
            self.out.block(_table(node))
        elif tag in ("ul", "ol"):
            self.flush()
            self.depth += 1
            return [("end", self.end_list), ("children", node)]
        elif tag == "li":
            self.flush()
            self.item = "  " * max(self.depth - 1, 0) + "- "
            return [("end", self.end_item), ("children", node)]
        elif tag in _BLOCKS:
            self.flush()
            return [("end", self.flush), ("children", node)]
        else:  # inline: a, span, em, code...
            return [("children", node)]
        return []

    def end_list(self) -> None:
        self.flush()
        self.depth -= 1

    def end_item(self) -> None:
        self.flush()
        self.item = ""


def without_permalinks(heading: str) -> str:
    """A heading without the anchor signs after it (`Intro ¶`, `Intro #`), in one pass from the end: a regular
    expression for "signs at the end" rescans from every sign and took 79 s on `Intro` + 40,000 ` #`."""
    end = len(heading)
    while True:
        while end and heading[end - 1].isspace():
            end -= 1
        sign = end and heading[end - 1] in _PERMALINK_SIGNS
        hash_sign = end >= 2 and heading[end - 1] == "#" and heading[end - 2].isspace()
        if not (sign or hash_sign):
            return heading[:end]
        end -= 1


def _table(table: Any) -> str:
    """A row a line, cells joined by " | " (rows of nested tables are not repeated)."""
    rows = []
    for row in table.iter("tr"):
        check_time()
        if next(row.iterancestors("table")) is not table:
            continue
        cells = [one_line(cell.text_content()) for cell in row if _tag(cell) in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)
