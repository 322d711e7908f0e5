"""The victim TextAttack queries: an :class:`~advcl.modeling.encoder.EncoderClassifier` behind TextAttack's model
wrapper interface (a list of inputs in, one row of logits per input out).

TextAttack's ``HuggingFaceModelWrapper`` pads every query to the tokenizer's ``model_max_length`` (512 for most
models); this wrapper sorts the queries by length, cuts them into batches of ``batch_size`` and pads each batch to
its longest member, truncating at ``max_length``, so that a batch of short sentences costs what they need.

On CPU it can run the classifier through onnxruntime instead of PyTorch: the graph is ``advcl export --format
onnx``'s (the same EncoderClassifier, logits equal to ~1e-6), exported once per checkpoint into a cache folder;
onnxruntime's fused kernels take about half the time of PyTorch's eager ones on a small encoder.

:class:`SentenceVictim` is AdvSTS's victim (:mod:`advcl.attacks.advsts`): the cosine of a pair's two sentence
embeddings, from the same model (the export's ``sentence_embedding`` output on onnxruntime).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import torch

from torch.nn import functional as F

from advcl.data.batching import EncodedDataset, encode, length_sorted_batches
from advcl.data.dataset import TextDataset
from advcl.data.tasks import UNLABELED
from advcl.modeling.encoder import EncoderClassifier, model_inputs


class Victim:
    """Logits of a classifier for TextAttack: ``victim(["a text", ...])`` or pairs ``victim([("premise", "hyp")])``.

    Like TextAttack's own wrappers, it exposes the Hugging Face sequence classifier as ``model``, and
    ``tokenizer``. Its head gives the logits, unless the run's classifier reads the pooled sentence vector
    (``model.classifier_input = "sentence"``): then the whole EncoderClassifier does.
    """

    def __init__(self, classifier: EncoderClassifier, tokenizer, max_length: int = 64, batch_size: int = 32,
                 device: str | torch.device = "cpu", session=None):
        classifier = classifier.eval().to(device)
        self.model = classifier.hf
        # what gives the logits: the architecture's own head directly (no hidden states kept), or the whole
        # EncoderClassifier where its classifier reads the pooled sentence vector (model.classifier_input)
        self.scorer = classifier if classifier.sentence_classifier is not None else classifier.hf
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.session = session  # an onnxruntime session on the classifier's export, or None: PyTorch

    def __call__(self, inputs: list) -> torch.Tensor:
        logits = torch.zeros((len(inputs), self.model.config.num_labels))
        if not inputs:
            return logits
        pairs = [(x, None) if isinstance(x, str) else tuple(x) for x in inputs]
        second_texts = [b for _, b in pairs] if pairs[0][1] is not None else None
        out = self.tokenizer([a for a, _ in pairs], second_texts, truncation=True, max_length=self.max_length,
                             padding=False, return_attention_mask=False)
        types = out.get("token_type_ids") if "token_type_ids" in self.tokenizer.model_input_names else None
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        encoded = EncodedDataset(out["input_ids"], types, None, pad)
        with torch.inference_mode():
            for rows in length_sorted_batches(encoded.lengths(), self.batch_size):
                logits[rows] = self._logits(model_inputs(encoded.collate(rows)))
        return logits

    def _logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.session is None:
            return self.scorer(**{k: v.to(self.device) for k, v in batch.items()}).logits.float().cpu()
        names = {i.name for i in self.session.get_inputs()}
        return torch.from_numpy(self.session.run(["logits"], {k: v.numpy() for k, v in batch.items() if k in names})[0])


class SentenceVictim:
    """Cosines of sentence pairs for AdvSTS: ``victim([("a sentence", "another"), ...])`` -> float64 tensor (n,).

    Each sentence is embedded alone, as ``advcl eval --suite sts`` embeds it (the model's pooling, truncated at
    ``max_length``), in length-sorted batches padded to their longest member; the cosine is taken in float64 like
    :func:`advcl.evaluation.sts.pair_cosines`. A search mostly changes one sentence of the pair at a time, so the
    embedding of each distinct sentence is kept until :meth:`clear_cache` (the goal function clears it when an
    example starts): a query costs one sentence, not two. ``model`` and ``tokenizer`` are exposed as TextAttack's
    wrappers expose them.
    """

    def __init__(self, classifier: EncoderClassifier, tokenizer, max_length: int = 64, batch_size: int = 32,
                 device: str | torch.device = "cpu", session=None):
        self.encoder = classifier.eval().to(device)
        self.model = classifier.hf
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.session = session  # an onnxruntime session on the model's export, or None: PyTorch
        self.cache: dict[str, torch.Tensor] = {}

    def clear_cache(self) -> None:
        self.cache.clear()

    def __call__(self, inputs: list) -> torch.Tensor:
        pairs = [tuple(x) for x in inputs]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("the sentence victim scores pairs of two sentences")
        if not pairs:
            return torch.zeros(0, dtype=torch.float64)
        vectors = self.embed([s for pair in pairs for s in pair])
        return F.cosine_similarity(vectors[0::2].double(), vectors[1::2].double(), dim=-1)

    def embed(self, sentences: list[str]) -> torch.Tensor:
        """The sentence embeddings (float32, on the CPU), each distinct new sentence computed once."""
        new = [s for s in dict.fromkeys(sentences) if s not in self.cache]
        if new:
            encoded = encode(TextDataset("queries", UNLABELED, new), self.tokenizer, self.max_length)
            with torch.inference_mode():
                for rows in length_sorted_batches(encoded.lengths(), self.batch_size):
                    for i, vector in zip(rows, self._sentences(model_inputs(encoded.collate(rows)))):
                        self.cache[new[i]] = vector
        return torch.stack([self.cache[s] for s in sentences])

    def _sentences(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.session is None:
            return self.encoder(**{k: v.to(self.device) for k, v in batch.items()}).sentence.float().cpu()
        names = {i.name for i in self.session.get_inputs()}
        feed = {k: v.numpy() for k, v in batch.items() if k in names}
        return torch.from_numpy(self.session.run(["sentence_embedding"], feed)[0]).float()


def onnx_session(loaded, cache: Path, log=lambda message: None):
    """An onnxruntime session (as many threads as PyTorch uses) on ``loaded``'s ONNX export, which is written to
    ``cache/KEY/model.onnx`` the first time (KEY: the weight files' paths, sizes and times)."""
    import onnxruntime

    from advcl.export import ONNX_FILE, write_onnx

    source = Path(loaded.source)
    weights = sorted(source.glob("*.safetensors")) + sorted(source.glob("*.bin")) if source.is_dir() else []
    identity = "|".join(f"{w.resolve()}:{w.stat().st_size}:{w.stat().st_mtime_ns}" for w in weights) or str(source)
    folder = cache / hashlib.sha256(identity.encode()).hexdigest()[:20]
    if not (folder / ONNX_FILE).is_file():
        log(f"exporting {loaded.source} to ONNX for onnxruntime (once per checkpoint, into {folder})")
        staging = cache / f".{folder.name}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        write_onnx(loaded, staging)
        shutil.rmtree(folder, ignore_errors=True)
        os.rename(staging, folder)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    return onnxruntime.InferenceSession(str(folder / ONNX_FILE), options, providers=["CPUExecutionProvider"])
