"""Predict a dataset with a classifier and score it."""

from __future__ import annotations

import torch

from advcl.data.batching import EncodedDataset, length_sorted_batches
from advcl.runtime.devices import autocast
from advcl.runtime.distributed import gather_objects, world
from advcl.evaluation.metrics import classification_metrics
from advcl.modeling.encoder import model_inputs


@torch.no_grad()
def predict(model, data: EncodedDataset, batch_size: int, device, precision: str = "fp32", progress=None):
    """Argmax predictions for every example, in order (batched longest first, for less padding). Leaves the
    model in the mode it found it.

    In distributed training each process predicts every N-th example and the shards are gathered.
    """
    topology = world()
    mine = list(range(topology.rank, len(data), topology.world_size))
    was_training = model.training
    model.eval()
    predictions = []
    try:
        batches = length_sorted_batches(data.lengths(), batch_size, mine)
        task = progress.add_task("evaluating", total=len(batches)) if progress else None
        for indices in batches:
            batch = {k: v.to(device) for k, v in data.collate(indices).items()}
            with autocast(device, precision):
                logits = model(**model_inputs(batch)).logits
            predictions.append(logits.argmax(-1).cpu())
            if progress:
                progress.advance(task)
        if progress:
            progress.remove_task(task)
    finally:
        model.train(was_training)
    local = torch.empty(len(mine), dtype=torch.long)
    if predictions:  # back to the order of ``mine`` (every N-th example from this process's rank)
        positions = [(i - topology.rank) // topology.world_size for indices in batches for i in indices]
        local[positions] = torch.cat(predictions)
    if not topology.distributed:
        return local
    merged = torch.empty(len(data), dtype=torch.long)
    for rank, shard in enumerate(gather_objects(local)):
        merged[rank :: topology.world_size] = shard
    return merged


def evaluate(model, data: EncodedDataset, num_classes: int, batch_size: int, device, precision="fp32", progress=None):
    predictions = predict(model, data, batch_size, device, precision, progress)
    return classification_metrics(torch.tensor(data.labels), predictions, num_classes)
