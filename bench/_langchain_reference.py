"""The LangChain reference pipeline for bench/ingest.py (runs in its own virtualenv).

PyPDFLoader -> RecursiveCharacterTextSplitter -> langchain-postgres PGVector, embedding with
all-MiniLM-L6-v2 from the same model files and the same mean pooling as deskbot's
MiniLM embedder, so the comparison measures the pipelines, not two runtimes.
Prints one JSON line: {"seconds": ..., "chunks": ..., "embed_seconds": ...}.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from langchain_community.document_loaders import PyPDFLoader
from langchain_core.embeddings import Embeddings
from langchain_postgres import PGVector
from langchain_text_splitters import RecursiveCharacterTextSplitter
from transformers import AutoModel, AutoTokenizer


class MiniLM(Embeddings):
    def __init__(self, path: str) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.seconds = 0.0

    def _embed(self, texts: list[str]) -> list[list[float]]:
        began = time.perf_counter()
        rows = []
        for i in range(0, len(texts), 32):
            batch = self.tokenizer(
                texts[i : i + 32],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            rows += torch.nn.functional.normalize(pooled, dim=1).tolist()
        self.seconds += time.perf_counter() - began
        return rows

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text])[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--collection", default="langchain_reference")
    parser.add_argument("pdfs", nargs="+")
    args = parser.parse_args()
    embeddings = MiniLM(args.model)
    began = time.perf_counter()
    documents = []
    for path in args.pdfs:
        try:
            documents += PyPDFLoader(path).load()
        except Exception:  # the reference skips what pypdf cannot read
            continue
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks = splitter.split_documents(documents)
    PGVector.from_documents(
        chunks,
        embeddings,
        collection_name=args.collection,
        connection=args.url,
        use_jsonb=True,
        pre_delete_collection=False,
    )
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - began,
                "chunks": len(chunks),
                "embed_seconds": embeddings.seconds,
                "pages": len(documents),
            }
        )
    )


if __name__ == "__main__":
    main()
