"""E-mail messages: ``.eml`` (the standard library's ``email``) and Outlook ``.msg``
(extract-msg).

A message becomes its subject as a heading, one block of headers (From, To, Cc, Date,
Subject) and its body: the plain-text part when it has one, else the HTML part through the
HTML walker (tables stay tables). Its attached files come back as bytes for
:mod:`knowledge._attachments`; images shown inside the body (inline, with a Content-ID) are
not attachments.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

from knowledge._attachments import RawAttachment
from knowledge._markup import decode_html, html_blocks, text_paragraphs
from knowledge.documents import Block
from knowledge.errors import ParseError

__all__ = ["MailContent", "read_eml", "read_msg"]

_HEADERS = ("From", "To", "Cc", "Date", "Subject")


@dataclass
class MailContent:
    """What a message holds: blocks in reading order, its subject and its attachments."""

    blocks: list[Block]
    subject: str | None
    attachments: list[RawAttachment] = field(default_factory=list)


def mail_blocks(headers: dict[str, str], body: list[Block]) -> list[Block]:
    """The subject as heading, the headers as one block, then the body."""
    lines = [f"{name}: {' '.join(value.split())}" for name, value in headers.items() if value]
    subject = " ".join(headers.get("Subject", "").split())
    head = [Block(kind="heading", text=subject)] if subject else []
    return [*head, *([Block(kind="text", text="\n".join(lines))] if lines else []), *body]


# --- .eml ------------------------------------------------------------------------------


def read_eml(path: Path) -> MailContent:
    """An RFC 5322 message (MIME parts, encoded words and charsets decoded)."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # what policy.default builds
    headers = {name: _header(message, name) for name in _HEADERS}
    if not any(headers.values()):
        raise ParseError("not an e-mail message: no From, To, Date or Subject header")
    body_part = message.get_body(preferencelist=("plain", "html"))
    body = _body_blocks(body_part) if body_part is not None else []
    if body_part is None and not message.is_multipart():
        body = _body_blocks(message)
    attachments = [item for item in _attachments(message, skip=body_part) if item.data or item.name]
    return MailContent(mail_blocks(headers, body), headers["Subject"] or None, attachments)


def _header(message: EmailMessage, name: str) -> str:
    try:
        return str(message.get(name) or "")
    except (ValueError, TypeError, IndexError, AttributeError):  # a header it cannot decode
        raw = (value for key, value in message.raw_items() if key.lower() == name.lower())
        return str(next(raw, ""))


def _body_blocks(part: Message) -> list[Block]:
    text = _part_text(part)
    if part.get_content_subtype() == "html":
        return html_blocks(text)[0]
    return text_paragraphs(text.replace("\r\n", "\n"))


def _part_text(part: Message) -> str:
    """The part's text in its declared charset; an unknown or wrong one is read as UTF-8."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _attachments(message: Message, *, skip: Message | None) -> list[RawAttachment]:
    """Attached files in order; an attached message is one file (``.eml``), not opened."""
    found: list[RawAttachment] = []
    for part in _leaves(message):
        if part is skip or _is_body(part):
            continue
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            data = inner.as_bytes() if isinstance(inner, Message) else b""
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
        found.append(RawAttachment(part.get_filename(), data, content_type))
    return found


def _leaves(message: Message) -> list[Message]:
    """The message's non-multipart parts; an attached message counts as one part."""
    if message.get_content_type() == "message/rfc822" or not message.is_multipart():
        return [message]
    parts: list[Message] = []
    payload = message.get_payload()
    for part in payload if isinstance(payload, list) else []:
        if isinstance(part, Message):
            parts.extend(_leaves(part))
    return parts


def _is_body(part: Message) -> bool:
    """Alternative bodies and images the HTML body shows (by Content-ID) belong to the
    message; a part marked as attachment, or with a file name, is an attachment."""
    if part.get_content_disposition() == "attachment":
        return False
    if part.get_content_maintype() == "image" and part["Content-ID"] is not None:
        return True
    return part.get_filename() is None


# --- .msg ------------------------------------------------------------------------------


def read_msg(path: Path) -> MailContent:
    """An Outlook message (an OLE file of MAPI properties), read by extract-msg."""
    import extract_msg
    from extract_msg.exceptions import ExMsgBaseException

    try:
        message = extract_msg.openMsg(str(path), delayAttachments=False)
    except (ExMsgBaseException, OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:100] or type(exc).__name__
        raise ParseError(f"corrupt or not an Outlook message: {detail}") from None
    try:
        return _msg_content(message)
    finally:
        message.close()


def _msg_content(message: Any) -> MailContent:
    date = getattr(message, "date", None)
    headers = {
        "From": str(getattr(message, "sender", None) or ""),
        "To": str(getattr(message, "to", None) or ""),
        "Cc": str(getattr(message, "cc", None) or ""),
        "Date": date.isoformat(" ") if isinstance(date, dt.datetime) else str(date or ""),
        "Subject": str(getattr(message, "subject", None) or ""),
    }
    text = getattr(message, "body", None)
    if text and str(text).strip():
        body = text_paragraphs(str(text).replace("\r\n", "\n"))
    else:
        html = getattr(message, "htmlBody", None)
        body = html_blocks(decode_html(html))[0] if isinstance(html, bytes) and html else []
    attachments = [_msg_attachment(item) for item in getattr(message, "attachments", [])]
    subject = headers["Subject"] or None
    return MailContent(mail_blocks(headers, body), subject, [a for a in attachments if a])


def _msg_attachment(item: Any) -> RawAttachment | None:
    name = getattr(item, "longFilename", None) or getattr(item, "shortFilename", None)
    data = getattr(item, "data", None)
    if isinstance(data, bytes):
        return RawAttachment(name, data, getattr(item, "mimetype", None))
    if data is not None and hasattr(data, "exportBytes"):  # an attached Outlook message
        subject = getattr(data, "subject", None) or "message"
        return RawAttachment(name or f"{subject}.msg", data.exportBytes(), None)
    return None
