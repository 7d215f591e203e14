"""Cut the bundled demo/test data (data/beauty-demo) out of ../shared/data/amazon-reviews/amazon2014-beauty.

The subset keeps the most-reviewed products and the shoppers with at least five
events among them, so histories stay long enough to replay and to hold one out.
It is committed to the repository (a user has no ../shared); this script only
documents and reproduces how it was made:

    python -m train.make_demo_data --items 3000 --out data/beauty-demo
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="../shared/data/amazon-reviews/amazon2014-beauty")
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--min-events", type=int, default=5)
    parser.add_argument("--out", default="data/beauty-demo")
    args = parser.parse_args()

    items = pd.read_parquet(Path(args.source) / "items.parquet")
    events = pd.read_parquet(Path(args.source) / "interactions.parquet")
    popular = events["item_id"].value_counts().head(args.items).index
    events = events[events["item_id"].isin(popular)]
    per_user = events.groupby("user_id")["item_id"].transform("size")
    events = events[per_user >= args.min_events].sort_values(["user_id", "timestamp", "item_id"])
    items = items[items["item_id"].isin(events["item_id"].unique())].sort_values("item_id")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items.to_parquet(out / "items.parquet", index=False)
    events.to_parquet(out / "interactions.parquet", index=False)
    print(f"{len(items)} products, {events['user_id'].nunique()} shoppers, {len(events)} events -> {out}")


if __name__ == "__main__":
    main()
