"""Build the catalogue index artifact: load products, encode them, save vectors + ANN index.

    shopsense index --catalog products.parquet [--interactions events.parquet]

Popularity (for cold start) is the number of events per product in the optional
interactions table, which also gives the co-occurrence graph; a BM25 index is saved
beside the catalogue too. Without --catalog the bundled demo catalogue is indexed.
"""
from __future__ import annotations

from pathlib import Path

from rich.progress import Progress

from shopsense.catalog import load_catalog, read_table
from shopsense.config import Settings
from shopsense.datasets import DEMO_DATA
from shopsense.encoders import build_encoder
from shopsense.index import CatalogIndex
from shopsense.ranking import build_sources, save_sources


def build_catalog_index(settings: Settings, catalog: Path | None = None, interactions: Path | None = None) -> CatalogIndex:
    if catalog is None:
        catalog, interactions = DEMO_DATA / "items.parquet", interactions or DEMO_DATA / "interactions.parquet"
    products = load_catalog(catalog)
    popularity = None
    if interactions is not None:
        popularity = read_table(interactions)["item_id"].astype(str).value_counts()
    encoder = build_encoder(settings.encoder)
    try:
        with Progress() as progress:
            task = progress.add_task(f"encoding {len(products)} products ({encoder.name})", total=len(products))
            index = CatalogIndex.build(products, encoder, popularity,
                                       progress=lambda n: progress.update(task, completed=n))
    finally:
        encoder.close()
    index.save(settings.artifacts / "catalog")
    # BM25 and the co-occurrence graph are retrieval sources of the Ranking deployment, kept beside the index.
    events = read_table(interactions).astype({"user_id": str, "item_id": str}) if interactions is not None else None
    save_sources(build_sources(index, events), settings.artifacts / "catalog")
    print(f"indexed {len(index)} products -> {settings.artifacts / 'catalog'}")
    return index
