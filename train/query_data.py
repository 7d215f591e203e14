"""Build the labelled query dataset for the intent and demand models from ../shared/data.

    python -m train.query_data [--data ../shared/data] [--out artifacts/datasets/queries.parquet]
    python -m train.query_data --fixture --out data/queries/labelled_queries.parquet   # the committed test fixture

Queries come from Home Depot search terms, WANDS queries and the ESCI fragments. Each is labelled
by shopsense.query_labels: with the products judged relevant to it as evidence (Home Depot
relevance >= 2.5, ESCI E rows) where there are any, from its text alone otherwise. The held-out
split is drawn BY QUERY (one row per distinct normalised query, fixed seed) and only from queries
labelled with evidence, so that held-out labels are never the text rules' own output. The lexicons
used are written beside the parquet (lexicons.json) for the rules baseline of the evaluation.

Columns: query, source, evidence ("judged" | "text"), split ("train" | "heldout"), intent (str),
demand (list of str), reasons (list of str: why each label was given).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from shopsense.datasets import SHARED_DATA
from shopsense.query_labels import Evidence, Lexicons, QueryLabeller, build_lexicons, normalize_text

DEFAULT_OUT = Path("artifacts") / "datasets" / "queries.parquet"
HELDOUT_SHARE = 0.15
SEED = 13
RELEVANT = 2.5  # Home Depot: mean rating of at least "mostly relevant"
FIXTURE_SOURCES = ("esci", "wands")


def lexicons_path(dataset_path: str | Path) -> Path:
    return Path(dataset_path).with_name("lexicons.json")


def query_evidence(data_dir: Path) -> list[tuple[str, str, Evidence | None]]:
    """(query, source, evidence or None) for every distinct query; the first source of a query wins."""
    records: list[tuple[str, str, Evidence | None]] = []
    judged = pd.read_parquet(data_dir / "homedepot" / "judgments.parquet")
    for query, rows in judged.groupby("search_term", sort=True):
        titles = rows.loc[rows["relevance"] >= RELEVANT, "product_title"].tolist()
        records.append((query, "homedepot", Evidence(titles=titles) if titles else None))
    esci = pd.read_csv(data_dir / "esci-fragments" / "exact_with_text.csv")
    esci = esci[esci["esci_label"] == "E"]
    for query, rows in esci.groupby("query", sort=True):
        records.append((query, "esci", Evidence(titles=rows["product_title"].dropna().tolist(),
                                                brands=rows["product_brand"].dropna().tolist(),
                                                colours=rows["product_color"].dropna().tolist())))
    # The 150-query ESCI judgements carry product ids only; their E products have text where the fragment above has it.
    texts = esci.drop_duplicates("product_id").set_index("product_id")
    graded = pd.read_csv(data_dir / "esci-fragments" / "us_judgments_150q.csv")
    for query, rows in graded.groupby("query", sort=True):
        exact = texts.loc[texts.index.intersection(rows.loc[rows["rating"] == 100, "product_id"])]
        records.append((query, "esci", Evidence(titles=exact["product_title"].tolist(),
                                                brands=exact["product_brand"].dropna().tolist(),
                                                colours=exact["product_color"].dropna().tolist())
                        if len(exact) else None))
    wands = pd.read_csv(data_dir / "wands" / "query.csv", sep="\t")
    records += [(q, "wands", None) for q in wands["query"].astype(str)]
    seen, unique = set(), []
    for query, source, evidence in records:
        key = normalize_text(query)
        if key and key not in seen:
            seen.add(key)
            unique.append((query, source, evidence))
    return unique


def build_dataset(data_dir: str | Path = SHARED_DATA, lexicons: Lexicons | None = None) -> pd.DataFrame:
    data_dir = Path(data_dir)
    labeller = QueryLabeller(lexicons or build_lexicons(data_dir))
    rows = []
    for query, source, evidence in query_evidence(data_dir):
        labels = labeller.label(query, evidence)
        rows.append({"query": query, "source": source, "evidence": "judged" if evidence else "text",
                     "intent": labels.intent, "demand": labels.demand, "reasons": labels.reasons})
    frame = pd.DataFrame(rows)
    rng = np.random.default_rng(SEED)
    judged = frame.index[frame["evidence"] == "judged"].to_numpy()
    heldout = rng.choice(judged, size=int(round(HELDOUT_SHARE * len(judged))), replace=False)
    frame["split"] = "train"
    frame.loc[heldout, "split"] = "heldout"
    return frame[["query", "source", "evidence", "split", "intent", "demand", "reasons"]]


def write_dataset(data_dir: str | Path = SHARED_DATA, out: str | Path = DEFAULT_OUT, fixture: bool = False) -> pd.DataFrame:
    """Build and write the dataset and its lexicons; `fixture` writes only the rows that may be committed."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lexicons = build_lexicons(data_dir)
    frame = build_dataset(data_dir, lexicons)
    if fixture:
        # Home Depot's competition terms forbid committing its data: the fixture keeps the ESCI (Apache-2.0)
        # and WANDS (MIT) queries only, and leaves the catalogue-derived lexicons out.
        frame = frame[frame["source"].isin(FIXTURE_SOURCES)].reset_index(drop=True)
        frame.to_parquet(out, index=False)
        return frame
    frame.to_parquet(out, index=False)
    lexicons.to_json(lexicons_path(out))
    return frame


def load_dataset(path: str | Path = DEFAULT_OUT, data_dir: str | Path = SHARED_DATA) -> pd.DataFrame:
    """The labelled dataset at `path`, built from `data_dir` first if it is not there yet."""
    if not Path(path).exists():
        if not Path(data_dir).exists():
            raise FileNotFoundError(f"no labelled dataset at {path} and no source data at {data_dir} to build it from")
        write_dataset(data_dir, path)
    return pd.read_parquet(path)


def label_counts(frame: pd.DataFrame) -> dict:
    """Queries per intent class and per demand slot, by split."""
    counts = {}
    for split, part in frame.groupby("split"):
        demand = pd.Series([d for ds in part["demand"] for d in ds]).value_counts()
        counts[split] = {"queries": len(part), "intent": part["intent"].value_counts().to_dict(),
                         "demand": demand.to_dict(), "no_demand": int((part["demand"].map(len) == 0).sum())}
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_DATA))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--fixture", action="store_true", help="write the committable test fixture")
    args = parser.parse_args()
    frame = write_dataset(args.data, args.out, args.fixture)
    print(f"{len(frame)} queries -> {args.out}")
    print(pd.Series(label_counts(frame)).to_json(indent=2))


if __name__ == "__main__":
    main()
