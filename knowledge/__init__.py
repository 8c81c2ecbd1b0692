"""Documents: load -> partition -> chunk -> embed -> store, hybrid search, retrieval eval.

This package owns the ``collections``, ``documents`` and ``chunks`` tables
(:mod:`knowledge.schema`) and the column helpers every package's tables use
(:mod:`knowledge.dbtypes`).
"""
