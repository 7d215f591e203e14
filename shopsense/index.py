"""The catalogue index: products, their encoder vectors and an ANN index over them (faiss).

    index = CatalogIndex.build(products, encoder, popularity=counts)   # encode + index
    index.save("artifacts/catalog");  index = CatalogIndex.load("artifacts/catalog")
    scores, rows = index.search(query_vectors, k=100)                  # inner product = cosine
    scores, rows = index.search(query_vectors, k=100, ef_search=512)   # a wider HNSW search for this call

Small catalogues use exact search (IndexFlatIP); from `HNSW_FROM` products on, an HNSW
graph (approximate, sub-linear; `HNSW_EF_SEARCH` candidates per search unless a call
asks for more, which trades time for recall). The artifact directory holds products.parquet,
vectors.npy, index.faiss and meta.json; every Serve replica loads the same one.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from shopsense.catalog import brands, product_text
from shopsense.encoders import Encoder

HNSW_FROM = 100_000
HNSW_M = 32
HNSW_EF_SEARCH = 128


def build_faiss(vectors: np.ndarray) -> faiss.Index:
    dim = vectors.shape[1]
    if len(vectors) >= HNSW_FROM:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


class CatalogIndex:
    def __init__(self, products: pd.DataFrame, vectors: np.ndarray, ann: faiss.Index | None = None,
                 meta: dict | None = None):
        self.products = products.reset_index(drop=True)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.ann = ann if ann is not None else build_faiss(self.vectors)
        self.meta = meta or {}
        self.directory: Path | None = None   # the artifact directory it was loaded from (sources live beside it)
        self.row_of = {item_id: row for row, item_id in enumerate(self.products["item_id"])}
        self.titles = self.products["title"].tolist()
        popularity = self.products["popularity"].to_numpy(dtype=np.float64) if "popularity" in self.products \
            else np.zeros(len(self.products))
        # log-scaled to [0, 1] so one best-seller does not flatten everything else
        self.popularity = (np.log1p(popularity) / max(np.log1p(popularity).max(), 1e-12)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.products)

    @cached_property
    def brands(self) -> list[str]:
        """Each product's brand, inferred from the titles where the catalogue has none (catalog.brands)."""
        return brands(self.products)

    @classmethod
    def build(cls, products: pd.DataFrame, encoder: Encoder, popularity: pd.Series | None = None,
              batch_size: int = 256, progress: Callable[[int], None] | None = None) -> "CatalogIndex":
        """Encode every product text in batches (`progress(n_done)` after each) and index the vectors."""
        products = products.reset_index(drop=True).copy()
        counts = popularity if popularity is not None else pd.Series(dtype=float)
        products["popularity"] = products["item_id"].map(counts).fillna(0).astype(float)
        texts = [product_text(row) for row in products.to_dict("records")]
        chunks = []
        for start in range(0, len(texts), batch_size):
            chunks.append(encoder.encode(texts[start:start + batch_size]))
            if progress:
                progress(min(start + batch_size, len(texts)))
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, encoder.dim), dtype=np.float32)
        return cls(products, vectors, meta={"encoder": encoder.name, "dim": int(vectors.shape[1]),
                                            "products": len(products)})

    def search(self, vectors: np.ndarray, k: int, ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows by inner product for each query vector; rows of -1 pad results past the catalogue.
        `ef_search`: the HNSW candidate list of this call (None: the index's own, HNSW_EF_SEARCH; exact
        search ignores it)."""
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        params = faiss.SearchParametersHNSW(efSearch=ef_search) \
            if ef_search is not None and isinstance(self.ann, faiss.IndexHNSW) else None
        return self.ann.search(vectors, min(k, len(self)), params=params)

    def rows(self, item_ids) -> list[int]:
        """Rows of the given item ids, skipping ids not in the catalogue."""
        return [self.row_of[i] for i in item_ids if i in self.row_of]

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        # write then rename, so a reader never loads a half-written artifact
        for name, write in (("products.parquet", lambda p: self.products.to_parquet(p, index=False)),
                            ("vectors.npy", lambda p: np.save(p, self.vectors)),
                            ("index.faiss", lambda p: faiss.write_index(self.ann, str(p))),
                            ("meta.json", lambda p: p.write_text(json.dumps(self.meta, indent=2)))):
            tmp = directory / f".tmp.{name}"  # keeps the suffix np.save insists on
            write(tmp)
            tmp.replace(directory / name)

    @classmethod
    def load(cls, directory: str | Path) -> "CatalogIndex":
        directory = Path(directory)
        if not (directory / "meta.json").exists():
            raise FileNotFoundError(f"no catalogue index in {directory}; build one with `shopsense index`")
        index = cls(pd.read_parquet(directory / "products.parquet"), np.load(directory / "vectors.npy", allow_pickle=False),
                    faiss.read_index(str(directory / "index.faiss")), json.loads((directory / "meta.json").read_text()))
        index.directory = directory
        return index
