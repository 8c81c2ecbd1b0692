"""A small corpus for the integration front doors (MCP, LangChain): one public collection,
one private one readable by user ``U1`` only, stored through the real ingest pipeline."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from knowledge.documents import document_from_text
from knowledge.ingest import Ingestor

__all__ = ["PRIVATE_FACT", "PUBLIC_FACT", "store_sample_corpus"]

PUBLIC_FACT = "The hotel cap in Tokyo is 180 USD per night."
PRIVATE_FACT = "The CEO salary is 900 million won."

_DOCUMENTS = {
    "handbook": [
        (
            "travel.md",
            "Travel policy",
            f"{PUBLIC_FACT} Trips abroad need approval from a team lead.\n\n"
            "Taxis to the airport are reimbursed with a receipt.",
        ),
        (
            "leave.md",
            "휴가 규정",
            "연차 휴가는 입사 첫해 15일입니다.\n\n병가는 연 10일까지 유급입니다.",
        ),
    ],
    "hr": [("salaries.md", "Salaries", f"{PRIVATE_FACT} Salary band B3 pays 70 million won.")],
}


async def store_sample_corpus(ingestor: Ingestor, engine: AsyncEngine) -> None:
    """Store the corpus: ``handbook`` (public) and ``hr`` (private, allowed for ``U1``)."""
    for name, documents in _DOCUMENTS.items():
        visibility = "private" if name == "hr" else "public"
        collection = await ingestor.store.ensure_collection(
            name, ingestor.embedder, visibility=visibility
        )
        for source, title, body in documents:
            result = await ingestor.store_parsed(
                document_from_text(source, title, body),
                collection,
                source=source,
                digest=hashlib.sha256(body.encode()).hexdigest(),
                size_bytes=len(body.encode()),
            )
            assert result.status == "stored", result
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE collections SET allowed_roles = '{U1}' WHERE name = 'hr'"))
