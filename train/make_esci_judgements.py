"""Write the bundled search-judgements fixture (data/esci-judgements) from ../shared/data/esci-fragments.

Real Amazon Shopping Queries (ESCI) rows, all labelled E (exact), recast in the Home
Depot judgements format the search training and evaluation read (`id, product_uid,
product_title, search_term, relevance`, E -> relevance 3). The Home Depot file may not
be committed; this one may (ESCI is Apache-2.0), so a user with only the repository can
fine-tune the encoder, train the search ranker and run `shopsense eval search` on it.
It is committed; this script only documents and reproduces how it was made:

    python -m train.make_esci_judgements --out data/esci-judgements
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="../shared/data/esci-fragments/exact_with_text.csv")
    parser.add_argument("--out", default="data/esci-judgements")
    args = parser.parse_args()

    rows = pd.read_csv(args.source)
    rows = rows[rows["esci_label"] == "E"].drop_duplicates(["query", "product_id"])
    # product ids become integers, as in the Home Depot file
    product_uid = {pid: 1 + i for i, pid in enumerate(sorted(rows["product_id"].unique()))}
    judgements = pd.DataFrame({"id": rows["example_id"].astype("int64"),
                               "product_uid": rows["product_id"].map(product_uid).astype("int64"),
                               "product_title": rows["product_title"].astype(str),
                               "search_term": rows["query"].astype(str), "relevance": 3.0})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    judgements.to_parquet(out / "judgments.parquet", index=False)
    print(f"{len(judgements)} judgements, {judgements['search_term'].nunique()} queries, "
          f"{judgements['product_uid'].nunique()} products -> {out / 'judgments.parquet'}")


if __name__ == "__main__":
    main()
