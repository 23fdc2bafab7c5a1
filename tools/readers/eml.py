"""E-mail (.eml, RFC 5322 with MIME), on Python's email package: the subject is the title and the heading, then
From, To, Cc and Date, then the text part (the HTML part read as a page where there is no plain text), then the
attachments listed by name, type and size, not read (each is a file of its own, and often large)."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from tools.readers.base import Document, Reader, Unreadable
from tools.readers.build import DocumentBuilder, one_line
from tools.readers.html import READER as HTML

_HEADERS = ("From", "To", "Cc", "Date")


class EmailReader(Reader):
    suffixes = (".eml",)

    def read(self, data: bytes, max_pages: int) -> Document:
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)  # what policy.default makes
        if not any(message.get(name) for name in ("Subject", "From", "To", "Date", "Message-ID")):
            raise Unreadable("not an e-mail message (no Subject, From, To or Date header)")
        subject = one_line(str(message.get("Subject") or "")) or None
        builder = DocumentBuilder()
        if subject:
            builder.heading(1, subject)
        builder.block("\n".join(f"{name}: {one_line(str(message[name]))}" for name in _HEADERS if message.get(name)))
        body = message.get_body(preferencelist=("plain", "html"))
        if body is not None:
            try:
                content = body.get_content()
            except (LookupError, UnicodeError, ValueError) as exc:
                raise Unreadable(f"not a readable e-mail (its text part cannot be decoded: {exc})") from None
            if body.get_content_subtype() == "html":
                page = HTML.read(str(content).encode("utf-8"), max_pages)
                builder.block(page.text)
            else:
                builder.block(str(content).replace("\r\n", "\n"))
        attachments = [_describe(part) for part in message.iter_attachments()]
        if attachments:
            builder.block("Attachments (not read):\n" + "\n".join(f"- {a}" for a in attachments), item=False)
        return builder.build(subject)


READER = EmailReader()


def _describe(part: EmailMessage) -> str:
    """`report.pdf (application/pdf, 12 KB)`."""
    payload = part.get_payload(decode=True)
    size = len(payload) if isinstance(payload, bytes) else 0
    name = one_line(part.get_filename() or "") or "unnamed"
    shown = f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{max(1, round(size / 1024))} KB"
    return f"{name} ({part.get_content_type()}, {shown})"
