"""Product catalogues: a generic loader (parquet, CSV, JSONL) and the normalised table everything else uses.

A catalogue file needs an id and a title column; brand, category, price and
description are optional. Column names are matched case-insensitively, with the
common aliases of public e-commerce data:

    from shopsense.catalog import load_catalog
    products = load_catalog("products.parquet")     # DataFrame: item_id, title, brand, category, price, ...

The normalised table has string item ids, unescaped titles, and a price band
(quartile of the catalogue's prices) where prices exist.
"""
from __future__ import annotations

import html
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["item_id", "title", "brand", "category", "price", "description"]
ALIASES = {
    "item_id": ["item_id", "id", "product_id", "product_uid", "aid", "asin", "sku"],
    "title": ["title", "product_title", "name", "product_name"],
    "brand": ["brand", "product_brand", "manufacturer"],
    "category": ["category", "product_class", "category_name", "main_cat"],
    "price": ["price", "product_price"],
    "description": ["description", "product_description"],
}
PRICE_BANDS = ["budget", "mid", "upper", "premium"]


def read_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".jsonl", ".ndjson"):
        return pd.read_json(path, lines=True)
    if suffix == ".tsv":
        return pd.read_csv(path, sep="\t")
    if suffix == ".csv":
        return pd.read_csv(path)
    raise ValueError(f"unsupported file type {suffix!r} for {path} (parquet, csv, tsv, jsonl)")


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Map a raw product table onto COLUMNS; drop rows without id or title; one row per item_id."""
    lower = {str(c).lower(): c for c in frame.columns}
    out = pd.DataFrame(index=frame.index)
    for column, aliases in ALIASES.items():
        source = next((lower[a] for a in aliases if a in lower), None)
        out[column] = frame[source] if source is not None else None
    if out["item_id"].isna().all() or out["title"].isna().all():
        raise ValueError(f"a catalogue needs an id and a title column; found {list(frame.columns)}")
    out = out.dropna(subset=["item_id", "title"])
    out["item_id"] = out["item_id"].astype(str)
    out["title"] = out["title"].astype(str).map(lambda t: html.unescape(t).strip())
    out = out[out["title"] != ""]
    for column in ("brand", "category", "description"):
        out[column] = out[column].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                                      else html.unescape(str(v)).strip() or None)
    out["price"] = pd.to_numeric(out["price"], errors="coerce")
    out = out.drop_duplicates("item_id").reset_index(drop=True)
    out["price_band"] = price_bands(out["price"])
    return out


def price_bands(prices: pd.Series) -> pd.Series:
    """Quartile band of each price within the catalogue (None where the price is unknown)."""
    known = prices.dropna()
    if known.empty:
        return pd.Series([None] * len(prices), index=prices.index, dtype=object)
    edges = np.quantile(known, [0.25, 0.5, 0.75])
    bands = np.searchsorted(edges, prices.fillna(0).to_numpy(), side="right")
    return pd.Series([PRICE_BANDS[b] if not np.isnan(p) else None for b, p in zip(bands, prices)],
                     index=prices.index, dtype=object)


def load_catalog(path: str | Path) -> pd.DataFrame:
    return normalize(read_table(path))


def product_text(row) -> str:
    """The text the encoder sees for a product: title, then brand and category where known."""
    parts = [row["title"]]
    for column in ("brand", "category"):
        value = row.get(column)
        if value and value.lower() not in row["title"].lower():
            parts.append(value)
    return " | ".join(parts)


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words, apostrophes dropped ("L'Oreal" -> "loreal")."""
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))


def brands(products: pd.DataFrame) -> list[str]:
    """Each product's brand: its brand field, or where that is empty, its title's first word when the
    catalogue uses that word mostly to open titles (titles lead with the brand: "Garnier Fructis ..." gives
    Garnier; "Hair Tamer ..." gives nothing, as "hair" is mostly found further into titles)."""
    titles = [words(str(t)) for t in products["title"].fillna("")]
    leading = Counter(t[0] for t in titles if t)
    anywhere = Counter(w for t in titles for w in set(t))
    given = products["brand"].tolist() if "brand" in products else [None] * len(products)
    found = []
    for title, brand in zip(titles, given):
        first = title[0] if title else ""
        if isinstance(brand, str) and brand.strip():
            found.append(brand.strip())
        elif len(first) > 2 and first.isalpha() and leading[first] >= 2 and leading[first] >= 0.5 * anywhere[first]:
            found.append(first)
        else:
            found.append("")
    return found
