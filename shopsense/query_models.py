"""Intent and demand classifiers for search texts: labels, and the exported model behind two backends.

    from shopsense.query_models import QueryClassifier
    intent = QueryClassifier("artifacts/models/intent")                  # plain PyTorch
    intent = QueryClassifier("artifacts/models/intent", backend="vllm")  # vLLM pooling runner
    probs = intent.predict(["dewalt 20v drill"])                         # (n, len(intent.labels)) float32
    intent.labels                                                        # ["purchase", "compare", "browse"]

A checkpoint is a Hugging Face `BertForSequenceClassification` directory written by
train/train_query_model.py. Its config says which head it is: `problem_type`
"single_label_classification" (intent: softmax over classes) or "multi_label_classification"
(demand: one sigmoid per slot); vLLM's classify applies the same activation, so both
backends give the same probabilities (tests/test_query_models.py checks it).

vLLM spawns worker processes: scripts that build a vLLM backend need an
`if __name__ == "__main__":` guard.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

# Intent: what the shopper is doing. Demand: which product attributes the text asks for.
INTENT_LABELS = ["purchase", "compare", "browse"]
DEMAND_LABELS = ["brand", "style_colour", "size_spec", "price", "material", "quantity_pack", "audience"]
TASK_LABELS = {"intent": INTENT_LABELS, "demand": DEMAND_LABELS}
MAX_QUERY_TOKENS = 32  # search texts are short; the same cut-off in training and both backends


def labels_of(config: dict) -> list[str]:
    return [config["id2label"][str(i)] for i in range(len(config["id2label"]))]


class QueryClassifier:
    """An exported intent or demand model; `predict` returns class probabilities in `labels` order."""

    def __init__(self, model_path: str | Path, backend: str = "torch", memory_fraction: float = 0.3):
        self.model_path = str(model_path)
        config = json.loads((Path(model_path) / "config.json").read_text())
        self.labels = labels_of(config)
        self.multi_label = config.get("problem_type") == "multi_label_classification"
        self.task = "demand" if self.multi_label else "intent"
        self.backend = backend
        if backend == "vllm":
            self._load_vllm(memory_fraction)
        elif backend == "torch":
            self._load_torch()
        else:
            raise ValueError(f"unknown query-model backend {backend!r} (vllm, torch)")

    @staticmethod
    def read_labels(model_path: str | Path) -> list[str]:
        """The class names of an exported model, in output order, without loading it."""
        return labels_of(json.loads((Path(model_path) / "config.json").read_text()))

    def _load_vllm(self, memory_fraction: float) -> None:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; a pooling model needs little
        import torch
        from transformers import AutoTokenizer
        from vllm import LLM

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        cuda = torch.cuda.is_available()
        # float32 on the CPU keeps probabilities equal to the PyTorch backend; CUDA graphs only on GPU.
        self.llm = LLM(model=self.model_path, runner="pooling", dtype="auto" if cuda else "float32",
                       enforce_eager=not cuda, gpu_memory_utilization=memory_fraction,
                       max_model_len=MAX_QUERY_TOKENS, seed=0)

    def _load_torch(self) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.model_path).to(self.device).eval()

    def close(self) -> None:
        """Stop the vLLM engine-core process (replaced models must not keep their memory)."""
        if self.backend == "vllm":
            self.llm.llm_engine.engine_core.shutdown()

    def predict(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if self.backend == "vllm":
            # Token ids cut to MAX_QUERY_TOKENS, as the PyTorch backend reads them (vLLM rejects longer prompts).
            prompts = [{"prompt_token_ids": ids} for ids in self.tokenizer(
                list(texts), truncation=True, max_length=MAX_QUERY_TOKENS)["input_ids"]]
            outputs = self.llm.classify(prompts, use_tqdm=False)
            return np.asarray([o.outputs.probs for o in outputs], dtype=np.float32)
        return np.concatenate([self._predict_torch(list(texts[i:i + batch_size]))
                               for i in range(0, len(texts), batch_size)])

    def _predict_torch(self, texts: list[str]) -> np.ndarray:
        import torch

        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_QUERY_TOKENS,
                               return_tensors="pt").to(self.device)
        with torch.inference_mode():
            logits = self.model(**batch).logits.float()
        probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
        return probs.cpu().numpy().astype(np.float32)
