"""Format parity: one text saved in many formats, read back by ``parse_file``.

    .venv/bin/python bench/formats.py \\
        ../shared/data/unstructured_example_docs/example-docs/language-docs [--rounds 5]

The folder holds one document as ``NAME.txt`` and as ``NAME.<format>`` (unstructured's
``eng_spa_mult``: EML, EPUB, ODT, PPTX, RTF, DOCX, HTML, Markdown ...). For each file: the
share of the text file's words that the parsed document holds (word recall, counted with
multiplicity, so a dropped paragraph shows), the share of the parsed words that are not in
the text file (extra: headers of an e-mail, a slide's number), blocks by kind, attachments,
and the median CPU seconds of parsing over ``--rounds`` (this process's CPU, so neighbours on
a shared machine weigh less than in wall time). Files of a format the parser refuses are
listed with the reason.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections import Counter
from pathlib import Path

from knowledge.errors import ParseError
from knowledge.parsing import parse_file

_WORD = re.compile(r"\w+")


def _words(text: str) -> Counter[str]:
    return Counter(word.lower() for word in _WORD.findall(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    reference = next(args.folder.glob("*.txt"))
    truth = _words(reference.read_text(encoding="utf-8"))
    print(f"reference: {reference.name} ({sum(truth.values())} words)")
    print(f"{'file':<22} {'recall':>7} {'extra':>6} {'blocks':>22} {'ms (CPU)':>9}  note")
    for path in sorted(args.folder.iterdir()):
        if path == reference or not path.is_file():
            continue
        seconds: list[float] = []
        try:
            for _ in range(args.rounds):
                began = time.process_time()
                doc = parse_file(path)
                seconds.append(time.process_time() - began)
        except ParseError as exc:
            print(f"{path.name:<22} {'-':>7} {'-':>6} {'-':>22} {'-':>9}  {exc.reason}: {exc}")
            continue
        found = _words(doc.text)
        recall = sum((truth & found).values()) / sum(truth.values())
        extra = sum((found - truth).values()) / max(1, sum(found.values()))
        kinds = Counter(block.kind for block in doc.blocks)
        shape = f"{kinds['heading']}h {kinds['text']}p {kinds['table']}t"
        note = f"{len(doc.attachments)} attachments" if doc.attachments else ""
        median_ms = statistics.median(seconds) * 1000
        print(f"{path.name:<22} {recall:>7.3f} {extra:>6.3f} {shape:>22} {median_ms:>9.1f}  {note}")


if __name__ == "__main__":
    main()
