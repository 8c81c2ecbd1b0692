"""Retrieval evaluation: metrics against hand-computed values, and the three dataset formats.

Every dataset here is a tiny one written to ``tmp_path`` in the layout of the real thing
(Vaswani/NPL as Terrier ships it, a BEIR folder, the KorQuAD dev JSON).
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest

from knowledge.errors import KnowledgeError
from knowledge.evaluation import METRICS, EvalDataError, EvalDocument, evaluate, load_dataset

pytestmark = pytest.mark.unit


def log2(x: float) -> float:
    return math.log2(x)


# ---------------------------------------------------------------------------- metrics


def test_binary_judgements_hand_computed() -> None:
    # Relevant: a, b, c. Retrieved at ranks 2 and 4.
    scores = evaluate({"q": ["x", "a", "y", "b", "z"]}, {"q": {"a": 1, "b": 1, "c": 1}})
    dcg = 1 / log2(3) + 1 / log2(5)
    ideal = 1 + 1 / log2(3) + 1 / log2(4)
    assert scores == pytest.approx(
        {
            "ndcg@10": dcg / ideal,
            "map": (1 / 2 + 2 / 4) / 3,
            "mrr": 1 / 2,
            "recall@1": 0.0,
            "recall@5": 2 / 3,
            "recall@10": 2 / 3,
        }
    )
    assert scores["ndcg@10"] == pytest.approx(0.498189, abs=1e-6)


def test_graded_gains_use_the_grade_and_the_ideal_order() -> None:
    scores = evaluate({"q": ["b", "a", "d"]}, {"q": {"a": 3, "b": 1, "c": 2}})
    dcg = 1 / log2(2) + 3 / log2(3)
    ideal = 3 / log2(2) + 2 / log2(3) + 1 / log2(4)
    assert scores["ndcg@10"] == pytest.approx(dcg / ideal)
    assert scores["ndcg@10"] == pytest.approx(0.607492, abs=1e-6)
    # MAP, MRR and recall treat any grade > 0 as relevant.
    assert scores["map"] == pytest.approx((1 / 1 + 2 / 2) / 3)
    assert scores["mrr"] == 1.0
    assert scores["recall@1"] == pytest.approx(1 / 3)
    assert scores["recall@5"] == pytest.approx(2 / 3)


def test_nothing_relevant_retrieved_scores_zero() -> None:
    scores = evaluate({"q": ["x", "y", "z"]}, {"q": {"a": 1}})
    assert scores == dict.fromkeys(METRICS, 0.0)


def test_empty_ranking_scores_zero() -> None:
    assert evaluate({"q": []}, {"q": {"a": 1}}) == dict.fromkeys(METRICS, 0.0)


def test_perfect_ranking_scores_one() -> None:
    scores = evaluate({"q": ["a", "b"]}, {"q": {"a": 2, "b": 1}})
    assert scores == pytest.approx(dict.fromkeys(METRICS, 1.0) | {"recall@1": 0.5})


def test_duplicates_count_once_and_keep_their_rank() -> None:
    scores = evaluate({"q": ["a", "a", "a", "b"]}, {"q": {"a": 1, "b": 1}})
    assert scores["recall@5"] == 1.0
    assert scores["recall@1"] == 0.5
    # b is found at rank 4, not rank 2: repeats take their slots.
    assert scores["map"] == pytest.approx((1 / 1 + 2 / 4) / 2)
    assert scores["ndcg@10"] == pytest.approx((1 + 1 / log2(5)) / (1 + 1 / log2(3)))


def test_a_repeated_relevant_document_cannot_push_recall_past_its_share() -> None:
    scores = evaluate({"q": ["a", "a", "a"]}, {"q": {"a": 1, "b": 1}})
    assert scores["recall@5"] == 0.5
    assert scores["map"] == pytest.approx(1 / 2)
    assert scores["ndcg@10"] == pytest.approx(1 / (1 + 1 / log2(3)))


def test_cutoffs_apply_to_ndcg_and_recall_but_not_map_or_mrr() -> None:
    ranking = [f"x{i}" for i in range(10)] + ["a"]
    scores = evaluate({"q": ranking}, {"q": {"a": 1}})
    assert scores["ndcg@10"] == 0.0
    assert scores["recall@10"] == 0.0
    assert scores["map"] == pytest.approx(1 / 11)
    assert scores["mrr"] == pytest.approx(1 / 11)


def test_ideal_dcg_is_cut_at_ten() -> None:
    relevant = [f"d{i}" for i in range(12)]
    scores = evaluate({"q": relevant}, {"q": dict.fromkeys(relevant, 1)})
    assert scores["ndcg@10"] == pytest.approx(1.0)
    assert scores["recall@10"] == pytest.approx(10 / 12)
    assert scores["map"] == pytest.approx(1.0)


def test_mean_is_over_judged_queries_and_a_missing_query_scores_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "unjudged": {"c": 0}}
    run = {"q1": ["a"], "unjudged": ["c"], "not-in-qrels": ["z"]}
    assert evaluate(run, qrels) == pytest.approx(dict.fromkeys(METRICS, 0.5))


def test_zero_and_negative_grades_are_not_relevant() -> None:
    scores = evaluate({"q": ["n", "z", "a"]}, {"q": {"a": 1, "n": -1, "z": 0}})
    assert scores["mrr"] == pytest.approx(1 / 3)
    assert scores["ndcg@10"] == pytest.approx(1 / log2(4))


def test_metrics_come_in_the_documented_order() -> None:
    assert tuple(evaluate({}, {"q": {"a": 1}})) == METRICS


def test_no_judged_query_is_an_error() -> None:
    with pytest.raises(EvalDataError, match="no query in the qrels has a relevant document"):
        evaluate({"q": ["a"]}, {"q": {"a": 0}})


def test_a_string_instead_of_a_ranking_is_refused() -> None:
    with pytest.raises(TypeError, match="list of document ids"):
        evaluate({"q": "abc"}, {"q": {"a": 1}})


# ---------------------------------------------------------------------------- errors


def one_line_error(fmt: str, path: Path) -> str:
    with pytest.raises(EvalDataError) as caught:
        load_dataset(fmt, path)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    assert isinstance(caught.value, KnowledgeError)
    return message


@pytest.mark.parametrize("fmt", ["trec", "beir", "korquad"])
def test_missing_path(tmp_path: Path, fmt: str) -> None:
    assert "no such file or folder" in one_line_error(fmt, tmp_path / "absent")


def test_unknown_format(tmp_path: Path) -> None:
    assert "unknown format 'csv'" in one_line_error("csv", tmp_path)


# ---------------------------------------------------------------------------- trec

TREC_DOCS = """<DOC>
<DOCNO>1</DOCNO>
compact memories have flexible capacities  a digital data storage
system with capacity up to bits
</DOC>
<DOC>
<DOCNO> 2 </DOCNO>
<HEADLINE>Microwave  dielectric</HEADLINE>
<TEXT>
measurement of the dielectric
constant of liquids
</TEXT>
</DOC>
<DOC>
<DOCNO>3</DOCNO>
electronic coordinate transformer
</DOC>
"""

TREC_TOPICS = """<top>
<num>1</num><title>
MEASUREMENT OF DIELECTRIC CONSTANT
</title>
</top>
<top>
<num>2</num><title>
DATA STORAGE
</title>
</top>
"""

TREC_QRELS = "1 0 2 1\n1 0 3 0\n2 0 1 2\n2 0 99 1\n"


def write_trec(root: Path, *, docs: str = TREC_DOCS, topics: str = TREC_TOPICS) -> Path:
    """Vaswani as Terrier ships it: share/<name>/{corpus/doc-text.trec, query-text.trec, qrels}."""
    inner = root / "share" / "npl"
    (inner / "corpus").mkdir(parents=True)
    (inner / "corpus" / "doc-text.trec").write_text(docs)
    (inner / "query-text.trec").write_text(topics)
    (inner / "qrels").write_text(TREC_QRELS)
    (inner / "README.md").write_text("This is an IR test collection in TREC format.\n")
    (root / "LICENSE.txt").write_text("Use it well.\n")
    return inner


def test_trec_terrier_layout(tmp_path: Path) -> None:
    write_trec(tmp_path / "npl")
    dataset = load_dataset("trec", tmp_path / "npl")
    assert dataset.name == "npl"
    assert dataset.documents == [
        EvalDocument(
            "1",
            "",
            "compact memories have flexible capacities a digital data storage system "
            "with capacity up to bits",
        ),
        EvalDocument(
            "2", "Microwave dielectric", "measurement of the dielectric constant of liquids"
        ),
        EvalDocument("3", "", "electronic coordinate transformer"),
    ]
    assert dataset.queries == {"1": "MEASUREMENT OF DIELECTRIC CONSTANT", "2": "DATA STORAGE"}
    # Grade 0 dropped; the judgement of a document missing from the corpus kept.
    assert dataset.qrels == {"1": {"2": 1}, "2": {"1": 2, "99": 1}}


def test_trec_classic_topics_with_unclosed_tags(tmp_path: Path) -> None:
    topics = """<top>
<num> Number: 1
<title> Topic: dielectric constant

<desc> Description:
Documents about measuring it.
</top>
<top>
<num> Number: 2
<title> data storage
<narr> Narrative: anything.
</top>
"""
    write_trec(tmp_path, topics=topics)
    dataset = load_dataset("trec", tmp_path)
    assert dataset.queries == {"1": "dielectric constant", "2": "data storage"}


def test_trec_plain_line_topics(tmp_path: Path) -> None:
    write_trec(tmp_path, topics="1 dielectric constant\n\n2\tdata  storage\n")
    assert load_dataset("trec", tmp_path).queries == {
        "1": "dielectric constant",
        "2": "data storage",
    }


def test_trec_gzipped_corpus_in_several_files(tmp_path: Path) -> None:
    inner = write_trec(tmp_path, docs=TREC_DOCS.split("<DOC>\n<DOCNO>3")[0])
    (inner / "corpus" / "more.trec.gz").write_bytes(
        gzip.compress(b"<DOC>\n<DOCNO>3</DOCNO>\nelectronic\n</DOC>\n")
    )
    dataset = load_dataset("trec", tmp_path)
    assert [doc.id for doc in dataset.documents] == ["1", "2", "3"]


def test_trec_latin1_corpus(tmp_path: Path) -> None:
    inner = write_trec(tmp_path)
    (inner / "corpus" / "doc-text.trec").write_bytes(
        TREC_DOCS.replace("electronic", "électronique").encode("latin-1")
    )
    assert load_dataset("trec", tmp_path).documents[2].text == "électronique coordinate transformer"


def test_trec_refuses_a_file(tmp_path: Path) -> None:
    inner = write_trec(tmp_path)
    assert "expected a folder" in one_line_error("trec", inner / "qrels")


def test_trec_without_qrels(tmp_path: Path) -> None:
    (write_trec(tmp_path) / "qrels").unlink()
    assert "no qrels file found" in one_line_error("trec", tmp_path)


def test_trec_with_two_qrels_files(tmp_path: Path) -> None:
    (write_trec(tmp_path) / "qrels.test").write_text(TREC_QRELS)
    assert "more than one qrels file" in one_line_error("trec", tmp_path)


@pytest.mark.parametrize(
    ("docs", "reason"),
    [
        (TREC_DOCS + "<DOC>\n<DOCNO>4</DOCNO>\nno end\n", "4 <DOC> tags but 3 closed"),
        (TREC_DOCS.replace("<DOCNO>1</DOCNO>", ""), "document 1 has no <DOCNO>"),
        (TREC_DOCS.replace("<DOCNO>3<", "<DOCNO>1<"), "document id '1' appears twice"),
    ],
)
def test_trec_malformed_corpus(tmp_path: Path, docs: str, reason: str) -> None:
    write_trec(tmp_path, docs=docs)
    assert reason in one_line_error("trec", tmp_path)


@pytest.mark.parametrize(
    ("qrels", "reason"),
    [
        ("1 0 2 1\n1 2 1\n", "qrels line 2: expected 'qid iter docno rel', got 3 fields"),
        ("1 0 2 yes\n", "qrels line 1: relevance 'yes' is not an integer"),
        ("1 0 77 1\n2 0 88 1\n", "no judged document is in the corpus"),
        ("7 0 1 1\n", "no judged query has both text and a relevant document"),
    ],
)
def test_trec_malformed_qrels(tmp_path: Path, qrels: str, reason: str) -> None:
    (write_trec(tmp_path) / "qrels").write_text(qrels)
    assert reason in one_line_error("trec", tmp_path)


def test_trec_topic_without_a_title(tmp_path: Path) -> None:
    write_trec(tmp_path, topics="<top>\n<num>1</num>\n</top>\n")
    assert "topic 1 lacks a <num> or a <title>" in one_line_error("trec", tmp_path)


# ---------------------------------------------------------------------------- beir


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    write_jsonl(
        root / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Scurvy", "text": "Vitamin C  prevents scurvy.", "metadata": {}},
            {"_id": "d2", "title": "", "text": "Citrus fruit."},
            {"_id": 3, "text": "A numeric id and no title."},
        ],
    )
    write_jsonl(
        root / "queries.jsonl",
        [
            {"_id": "q1", "text": "what prevents scurvy", "metadata": {}},
            {"_id": "q2", "text": "citrus"},
            {"_id": "q3", "text": "a training query"},
        ],
    )
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td2\t1\nq2\tgone\t1\n"
    )
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq3\t3\t1\n")
    return root


def test_beir_folder_reads_the_test_split(tmp_path: Path) -> None:
    dataset = load_dataset("beir", write_beir(tmp_path / "scifact"))
    assert dataset.name == "scifact"
    assert dataset.documents == [
        EvalDocument("d1", "Scurvy", "Vitamin C prevents scurvy."),
        EvalDocument("d2", "", "Citrus fruit."),
        EvalDocument("3", "", "A numeric id and no title."),
    ]
    # Only the split's queries; score 0 dropped; the unknown corpus id kept.
    assert dataset.queries == {"q1": "what prevents scurvy", "q2": "citrus"}
    assert dataset.qrels == {"q1": {"d1": 2}, "q2": {"d2": 1, "gone": 1}}


def test_beir_other_split_by_its_qrels_file(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "scifact")
    dataset = load_dataset("beir", root / "qrels" / "train.tsv")
    assert dataset.name == "scifact"
    assert dataset.queries == {"q3": "a training query"}
    assert dataset.qrels == {"q3": {"3": 1}}


def test_beir_qrels_without_header(tmp_path: Path) -> None:
    root = write_beir(tmp_path)
    (root / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    assert load_dataset("beir", root).qrels == {"q1": {"d1": 1}}


def test_beir_missing_qrels(tmp_path: Path) -> None:
    root = write_beir(tmp_path)
    (root / "qrels" / "test.tsv").unlink()
    assert "missing qrels/test.tsv" in one_line_error("beir", root)


def test_beir_malformed_json_line(tmp_path: Path) -> None:
    root = write_beir(tmp_path)
    with (root / "corpus.jsonl").open("a") as handle:
        handle.write('{"_id": "d4", "text": \n')
    assert "corpus.jsonl line 4: not JSON" in one_line_error("beir", root)


def test_beir_row_without_text(tmp_path: Path) -> None:
    root = write_beir(tmp_path)
    write_jsonl(root / "queries.jsonl", [{"_id": "q1", "query": "wrong key"}])
    assert "queries.jsonl line 1: expected an object with '_id' and 'text'" in one_line_error(
        "beir", root
    )


def test_beir_bad_qrels_row(tmp_path: Path) -> None:
    root = write_beir(tmp_path)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n")
    assert "test.tsv line 2: expected 'query-id<TAB>corpus-id<TAB>score'" in one_line_error(
        "beir", root
    )


# ---------------------------------------------------------------------------- korquad


def squad(articles: list[tuple[str, list[tuple[str, list[tuple[str, str]]]]]]) -> str:
    return json.dumps(
        {
            "version": "KorQuAD_v1.0_dev",
            "data": [
                {
                    "title": title,
                    "paragraphs": [
                        {
                            "context": context,
                            "qas": [
                                {
                                    "id": qid,
                                    "question": q,
                                    "answers": [{"text": "", "answer_start": 0}],
                                }
                                for qid, q in qas
                            ],
                        }
                        for context, qas in paragraphs
                    ],
                }
                for title, paragraphs in articles
            ],
        },
        ensure_ascii=False,
    )


KORQUAD = squad(
    [
        (
            "임종석",
            [
                ("1989년 2월 15일  지명수배되었다.", [("q-0-0", "지명수배 된 날은?")]),
                ("평양축전에 파견하였다.", [("q-0-1", "파견 된 인물은?"), ("q-0-2", "어디에?")]),
            ],
        ),
        (
            "노아의_방주",
            [
                ("방주는 크다.", [("q-1-0", "방주의 크기는?")]),
                ("방주는 크다.", [("q-1-1", "같은 문단의 다른 질문")]),
            ],
        ),
    ]
)


def write_korquad(folder: Path, content: str = KORQUAD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "KorQuAD_v1.0_dev.json"
    file.write_text(content, encoding="utf-8")
    return file


def test_korquad_paragraphs_are_documents_and_questions_queries(tmp_path: Path) -> None:
    dataset = load_dataset("korquad", write_korquad(tmp_path))
    assert dataset.name == "KorQuAD_v1.0_dev"
    # The twin paragraph 1-1 is folded into 1-0.
    assert dataset.documents == [
        EvalDocument("0-0", "임종석", "1989년 2월 15일 지명수배되었다."),
        EvalDocument("0-1", "임종석", "평양축전에 파견하였다."),
        EvalDocument("1-0", "노아의 방주", "방주는 크다."),
    ]
    assert dataset.queries["q-0-2"] == "어디에?"
    assert dataset.qrels == {
        "q-0-0": {"0-0": 1},
        "q-0-1": {"0-1": 1},
        "q-0-2": {"0-1": 1},
        "q-1-0": {"1-0": 1},
        "q-1-1": {"1-0": 1},
    }


def test_korquad_folder_with_one_json_file(tmp_path: Path) -> None:
    write_korquad(tmp_path / "korquad")
    (tmp_path / "korquad" / "LICENSE.txt").write_text("CC BY-ND 2.0 KR\n")
    assert len(load_dataset("korquad", tmp_path / "korquad").queries) == 5


def test_korquad_folder_with_two_json_files(tmp_path: Path) -> None:
    write_korquad(tmp_path)
    (tmp_path / "train.json").write_text(KORQUAD, encoding="utf-8")
    assert "expected one .json file" in one_line_error("korquad", tmp_path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (KORQUAD[:-10], "not JSON"),
        ("[]", "expected a SQuAD object with a 'data' list"),
        (KORQUAD.replace('"context"', '"ctx"', 1), "data[0].paragraphs[0] has no 'context'"),
        (KORQUAD.replace('"question"', '"q"', 1), "data[0].paragraphs[0].qas[0] has no 'question'"),
        (KORQUAD.replace('"q-0-1"', '"q-0-0"'), "query id 'q-0-0' appears twice"),
    ],
)
def test_korquad_malformed(tmp_path: Path, content: str, reason: str) -> None:
    assert reason in one_line_error("korquad", write_korquad(tmp_path, content))


# ---------------------------------------------------------------------------- end to end


def test_a_loaded_dataset_scores_a_run(tmp_path: Path) -> None:
    dataset = load_dataset("korquad", write_korquad(tmp_path))
    run = {qid: ["0-0", "0-1", "1-0"] for qid in dataset.queries}
    scores = evaluate(run, dataset.qrels)
    # Relevant at rank 1 for one query, rank 2 for two, rank 3 for two.
    assert scores["mrr"] == pytest.approx((1 + 2 * (1 / 2) + 2 * (1 / 3)) / 5)
    assert scores["recall@1"] == pytest.approx(1 / 5)
    assert scores["recall@5"] == 1.0
