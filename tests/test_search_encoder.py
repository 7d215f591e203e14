"""The search encoder's fine-tuning (train/train_encoder.py), a short real Ray Train run on the bundled
ESCI judgements (data/esci-judgements), and the chain it feeds: both encoder backends serve the export,
the search ranker trains on its vectors, and `eval search` scores only queries neither model saw.

    .venv/bin/python -m pytest tests/test_search_encoder.py -q
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from shopsense.config import Settings
from shopsense.datasets import REPO_ROOT
from shopsense.encoders import SentenceTransformersEncoder
from train.query_split import query_hash, query_split
from train.train_encoder import judged_pairs

JUDGEMENTS = REPO_ROOT / "data" / "esci-judgements" / "judgments.parquet"


@pytest.fixture(scope="module")
def fine_tuned(ray_session, tmp_path_factory):
    from train.train_encoder import train_main

    out = tmp_path_factory.mktemp("encoder") / "encoder-search"
    # a few passes over ~350 pairs: enough to move the vectors, seconds on a CPU
    return train_main(JUDGEMENTS, out, workers=1, epochs=3, batch_size=16, lr=1e-4)


def mean_pair_cosine(encoder, pairs) -> float:
    queries, texts, _ = zip(*pairs)
    return float(np.mean(np.sum(encoder.encode(list(queries)) * encoder.encode(list(texts)), axis=1)))


def test_pairs_follow_the_query_split():
    pairs = judged_pairs(JUDGEMENTS)
    for split, rows in pairs.items():
        assert all(query_split(query) == split for query, _, _ in rows)
    assert not {q for q, _, _ in pairs["train"]} & {q for q, _, _ in pairs["valid"] + pairs["test"]}


def test_fine_tuning_pulls_judged_pairs_together_and_records_its_queries(fine_tuned, st_encoder):
    pairs = judged_pairs(JUDGEMENTS)
    export = SentenceTransformersEncoder(fine_tuned["export_dir"])
    assert export.dim == st_encoder.dim
    assert mean_pair_cosine(export, pairs["train"]) > mean_pair_cosine(st_encoder, pairs["train"]) + 0.05
    assert fine_tuned["final_metrics"]["epoch"] == 3 and np.isfinite(fine_tuned["final_metrics"]["val_loss"])
    assert set(fine_tuned["trained_query_hashes"]) == {query_hash(q) for q, _, _ in pairs["train"]}


VLLM_SCRIPT = """
import json, sys
if __name__ == "__main__":
    from shopsense.encoders import VLLMEncoder
    encoder = VLLMEncoder(sys.argv[1])
    print("VECTORS" + json.dumps(encoder.encode(json.loads(sys.argv[2])).tolist()))
    encoder.close()
"""


def test_vllm_serves_the_fine_tuned_encoder_as_sentence_transformers_does(fine_tuned, tmp_path):
    texts = ["6 dining chairs", "Yaheetech Dining Chairs Velvet Armchairs, 6PCS", "usb c charger"]
    script = tmp_path / "vllm_encode.py"
    script.write_text(VLLM_SCRIPT)
    run = subprocess.run([sys.executable, str(script), fine_tuned["export_dir"], json.dumps(texts)],
                         capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(line for line in run.stdout.splitlines() if line.startswith("VECTORS"))
    served = np.array(json.loads(line[len("VECTORS"):]), dtype=np.float32)
    expected = SentenceTransformersEncoder(fine_tuned["export_dir"]).encode(texts)
    assert np.allclose(np.sum(served * expected, axis=1), 1.0, atol=1e-4)


def test_eval_search_uses_the_encoder_and_skips_every_query_it_or_the_ranker_saw(fine_tuned, tmp_path):
    from train.eval_search import eval_main
    from train.train_ranker import train_main

    settings = Settings.load(overrides={"artifacts_dir": str(tmp_path / "artifacts"),
                                        "encoder": {"backend": "sentence-transformers",
                                                    "model": fine_tuned["export_dir"]}})
    model = train_main("search", data=JUDGEMENTS, out=tmp_path / "ranker-search.txt", settings=settings, rounds=20)
    summary = eval_main(JUDGEMENTS, tmp_path / "search.json", model=model, settings=settings,
                        encoder=fine_tuned["export_dir"])
    test_queries = {q for q, _, _ in judged_pairs(JUDGEMENTS)["test"]}
    assert summary["queries"] == len(test_queries) and summary["queries_skipped_seen_in_training"] > 0
    assert set(summary["results"]) == {"system", "bm25", "encoder_cosine", "encoder_cosine_finetuned"}
    assert all(0.0 <= figures["nDCG@10"] <= 1.0 for figures in summary["results"].values())
    assert (tmp_path / "report.md").exists() and (tmp_path / "metrics.png").exists()
    # a ranker is only evaluated with the encoder its features came from
    with pytest.raises(ValueError, match="trained with encoder"):
        eval_main(JUDGEMENTS, model=model, settings=settings, encoder="packaged")
