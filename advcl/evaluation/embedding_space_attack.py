"""An embedding-space attack kept as files, for analysis (``advcl perturb --space embedding``)."""

from __future__ import annotations

from pathlib import Path


def perturb_embeddings(model: str, data: str, output: Path, split: str, num_examples: int, seed: int, batch_size: int,
                       max_length: int, options: dict, overwrite: bool, checkpoint: str, device: str) -> dict:
    """``advcl perturb --space embedding``: PGD on the input embeddings of a labelled sample at one ε (as
    ``advcl eval --robust`` attacks, :mod:`advcl.evaluation.robustness`); write OUTPUT/SPLIT.embedding.safetensors
    (δ per example, its norm, clean and adversarial sentence vectors and logits) and OUTPUT/SPLIT.embedding.jsonl
    (one line per row), and return the summary."""
    import json

    import torch
    from safetensors.torch import save_file

    from advcl.data.batching import encode
    from advcl.data.catalogue import load_data
    from advcl.runtime.devices import pick_device
    from advcl.runtime.progress import simple_progress
    from advcl.errors import BadInput
    from advcl.evaluation.perturbations import embedding_perturbations
    from advcl.evaluation.robustness import AttackSettings, check_eps, representation_distances
    from advcl.runs import load_model

    eps = check_eps(options.pop("eps"))
    settings = AttackSettings(options.pop("perturber"), seed=seed, **options)
    tensors_path, index_path = output / f"{split}.embedding.safetensors", output / f"{split}.embedding.jsonl"
    if not overwrite and (tensors_path.exists() or index_path.exists()):
        raise BadInput(f"{tensors_path} already exists (pass --overwrite to replace it)")
    loaded = load_model(model, checkpoint, require_head=True)
    dataset = load_data(data, label_names=loaded.label_names)
    if not dataset.has_class_labels:
        raise BadInput(f"{data} has no class labels: the attack ascends the loss of each example's true label")
    dataset = dataset.sample(num_examples, seed)  # labels outside the model's label set failed to load
    dev = pick_device(device)
    loaded.model.to(dev)
    encoded = encode(dataset, loaded.tokenizer, max_length or loaded.max_length)
    with simple_progress(f"{settings.attack} attack") as progress:
        found = embedding_perturbations(loaded.model, encoded, eps, settings, batch_size, dev, progress)
    cosine, euclidean = representation_distances(found["clean_sentence"], found["adversarial_sentence"])
    labels = torch.tensor(dataset.labels)
    clean_ok = found["clean_logits"].argmax(-1) == labels
    attacked_ok = clean_ok & (found["adversarial_logits"].argmax(-1) == labels)
    attack = {"attack": settings.attack, "eps": eps, "norm": settings.norm, "steps": settings.steps,
              "step_size": settings.step_size_for(eps), "seed": seed, "batch_size": batch_size}
    source = {"model": model, "checkpoint": loaded.source, "data": data, "pooling": loaded.pooling}
    output.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in found.items()}, tensors_path,
              metadata={k: json.dumps(v) for k, v in (attack | source).items()})
    lines = []
    for row in range(len(dataset)):
        line = {"row": row, "text": dataset.texts[row]}
        if dataset.pairs is not None:
            line["text_pair"] = dataset.pairs[row]
        line.update(label=dataset.labels[row], clean_prediction=int(found["clean_logits"][row].argmax()),
                    adversarial_prediction=int(found["adversarial_logits"][row].argmax()),
                    tokens=int(found["attention_mask"][row].sum()), delta_norm=found["delta_norm"][row].item(),
                    cosine_distance=cosine[row].item(), euclidean_distance=euclidean[row].item())
        lines.append(json.dumps(line, ensure_ascii=False) + "\n")
    index_path.write_text("".join(lines), encoding="utf-8")
    n = len(dataset)
    return {**attack, **source, "examples": n, "clean_accuracy": clean_ok.float().mean().item(),
            "accuracy_under_attack": attacked_ok.float().mean().item(),
            "mean_delta_norm": found["delta_norm"].mean().item(), "max_delta_norm": found["delta_norm"].max().item(),
            "cosine_distance": cosine.mean().item(), "euclidean_distance": euclidean.mean().item(),
            "tensors": str(tensors_path), "index": str(index_path)}
