"""BM25 over product texts (the bm25s library, Snowball-stemmed English), saved beside the catalogue index.

    bm25 = BM25Index.build(texts)                     # one text per catalogue row, in row order
    bm25.save("artifacts/catalog/bm25");  bm25 = BM25Index.load("artifacts/catalog/bm25")
    match = bm25.match("cordless drill 20v")          # scores and matched-term counts over all rows
    rows = match.top(100)

Scoring the whole catalogue for one query is a sparse column sum, cheap enough to
give every candidate (whatever source found it) its exact BM25 score.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.tokenization import Tokenizer


def _tokenizer() -> Tokenizer:
    return Tokenizer(stopwords="en", stemmer=Stemmer.Stemmer("english"))


@dataclass
class QueryMatch:
    """BM25 of one query against every catalogue row."""

    terms: list[str]
    scores: np.ndarray       # BM25 score per row
    matched: np.ndarray      # number of distinct query terms found in each row

    @property
    def coverage(self) -> np.ndarray:
        """Share of the query's terms each row contains (0 when the query has no indexed term)."""
        return self.matched / max(len(self.terms), 1)

    def top(self, k: int) -> np.ndarray:
        """Rows with a positive score, best first, at most k."""
        k = min(k, len(self.scores))
        if k == 0:
            return np.zeros(0, dtype=np.int64)
        best = np.argpartition(-self.scores, k - 1)[:k]
        best = best[np.argsort(-self.scores[best], kind="stable")]
        return best[self.scores[best] > 0].astype(np.int64)


class BM25Index:
    def __init__(self, retriever: bm25s.BM25, tokenizer: Tokenizer, size: int):
        self.retriever, self.tokenizer, self.size = retriever, tokenizer, size

    @classmethod
    def build(cls, texts: list[str]) -> "BM25Index":
        tokenizer = _tokenizer()
        retriever = bm25s.BM25()
        retriever.index(tokenizer.tokenize(list(texts), return_as="tuple", show_progress=False), show_progress=False)
        return cls(retriever, tokenizer, len(texts))

    def terms(self, query: str) -> list[str]:
        """The query's distinct indexed terms (stemmed; stopwords and unknown words dropped)."""
        tokens = self.tokenizer.tokenize([query], update_vocab=False, return_as="string", show_progress=False)[0]
        return list(dict.fromkeys(t for t in tokens if t))

    def match(self, query: str) -> QueryMatch:
        terms = self.terms(query)
        scores = np.zeros(self.size, dtype=np.float32)
        matched = np.zeros(self.size, dtype=np.float32)
        for term in terms:
            # one term at a time: the sum is the BM25 score, the count of non-zeros the coverage
            term_scores = self.retriever.get_scores([term])
            scores += term_scores
            matched += term_scores > 0
        return QueryMatch(terms, scores, matched)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(directory))
        self.tokenizer.save_vocab(str(directory))
        self.tokenizer.save_stopwords(str(directory))
        (directory / "size.json").write_text(json.dumps({"rows": self.size}))

    @classmethod
    def load(cls, directory: str | Path) -> "BM25Index":
        directory = Path(directory)
        tokenizer = _tokenizer()
        tokenizer.load_vocab(str(directory))
        tokenizer.load_stopwords(str(directory))
        size = json.loads((directory / "size.json").read_text())["rows"]
        return cls(bm25s.BM25.load(str(directory)), tokenizer, size)
