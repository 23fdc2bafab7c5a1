"""Images (.png, .jpg, .jpeg, .tif, .tiff): the text in them by OCR (tools/readers/ocr.py), each image (each page of
a multi-page TIFF) a page, and a section, so chunks keep their page numbers. Without OCR an image is skipped with
a reason that says how to install Tesseract. The image's size is read first (Pillow reads only the header): one
over `MAX_PIXELS` is refused, not decoded."""

from __future__ import annotations

import io

from tools.readers import ocr
from tools.readers.base import Document, Reader, Unreadable
from tools.readers.build import DocumentBuilder

MAX_PIXELS = 100_000_000  # an A0 poster at 300 dpi is 140 MP; a scanned A4 page 9 MP


class ImageReader(Reader):
    suffixes = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

    def read(self, data: bytes, max_pages: int) -> Document:
        from PIL import Image  # on the first image read: the server starts without it

        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                frames = getattr(image, "n_frames", 1)
        except Exception:  # Pillow raises UnidentifiedImageError, OSError and others; their text names its buffers
            raise Unreadable("not a readable image (damaged, truncated, or not the format its name says)") from None
        if width * height > MAX_PIXELS:
            raise Unreadable(f"an image of {width}x{height} pixels, over {MAX_PIXELS // 10**6} megapixels")
        if frames > max_pages:
            raise Unreadable(f"more than {max_pages} pages (MAX_PAGES)")
        if reason := ocr.unavailable("an image"):
            raise Unreadable(reason)
        pages = ocr.recognise(data)
        if pages and not pages[-1].strip():
            pages = pages[:-1]  # Tesseract ends every page with a form feed
        builder = DocumentBuilder()
        for text in pages:
            builder.page()
            builder.section()
            for paragraph in text.split("\n\n"):
                builder.block(paragraph.strip())
        doc = builder.build(None)
        if not doc.text.strip():
            raise Unreadable("an image: OCR found no text in it")
        return doc


READER = ImageReader()
