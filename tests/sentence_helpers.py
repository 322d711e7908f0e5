"""What the sentence-embedding tests share: small unlabelled batches for the tiny BERT, and a run folder written the way the engine writes one."""

import torch
from torch import nn

from advcl.config.recipe import load_recipe, recipe_to_toml
from advcl.engine.checkpoint import save_checkpoint
from advcl.modeling.encoder import EncoderClassifier
from advcl.runs import RunFolder

def random_sentences(n: int, length: int, vocab: int = 100, seed: int = 0) -> dict:
    """[CLS]=2 … [SEP]=3 rows of decreasing length, right-padded with 0; ordinary tokens are 5 … vocab-2."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.zeros(n, length, dtype=torch.long)
    mask = torch.zeros(n, length, dtype=torch.long)
    for row in range(n):
        real = length - row % 4
        ids[row, 0], ids[row, real - 1] = 2, 3
        ids[row, 1 : real - 1] = torch.randint(5, vocab - 1, (real - 2,), generator=generator)
        mask[row, :real] = 1
    return {"input_ids": ids, "attention_mask": mask, "index": torch.arange(n)}


def write_run_folder(path, model: EncoderClassifier, objective: nn.Module, tokenizer) -> RunFolder:
    """A run folder as the engine writes it: resolved config, model/ (config, tokenizer), one checkpoint."""
    recipe = load_recipe(None, data={"run": {"name": path.name, "output_dir": str(path.parent)},
                                     "data": {"train": "sentences:train"}, "objective": {"name": objective.name}})
    run = RunFolder(path)
    run.path.mkdir(parents=True)
    run.config.write_text(recipe_to_toml(recipe))
    model.hf.config.save_pretrained(run.model_dir)
    tokenizer.save_pretrained(run.model_dir)
    optimizer = torch.optim.AdamW(list(model.parameters()) + list(objective.parameters()))
    save_checkpoint(run.checkpoints, 3, model.hf.state_dict(), objective.state_dict(), optimizer.state_dict(),
                    {"best_step": None})
    return run


def mlm_run_folder(tmp_path, objective_name="mlm") -> tuple[RunFolder, EncoderClassifier, nn.Module]:
    """A run folder for a tiny BERT over the shipped vocabulary, its objective's parameters made non-trivial."""
    from objective_helpers import make_objective
    from tiny_models import tiny_bert, tiny_tokenizer

    model = EncoderClassifier(tiny_bert(seed=1)).eval()
    objective = make_objective(objective_name, model)
    torch.manual_seed(2)
    with torch.no_grad():
        for param in objective.parameters():
            param.normal_(0, 0.5)
    return write_run_folder(tmp_path / "mlm", model, objective, tiny_tokenizer()), model, objective
