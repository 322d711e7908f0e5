"""RobustSentEmbed (Rafiei Asl et al. 2024, §3, eq. 2-10 and Algorithm 1; docs/methods.md,
"Unsupervised / RobustSentEmbed").

Per batch: two dropout views X, X⁺ (SimCSE, :mod:`advcl.objectives.simcse`) give z and z⁺; the perturbation
generator (:mod:`advcl.perturbers.robustsentembed`) ascends ``L_con(X + δ + η, {X⁺})`` for max(K, T)
iterations and returns the sentence-level δ (ρ·PGD + (1−ρ)·FGSM) and the token-level η; ``z_adv = p(f(E + δ))``.

    L = L_con(z, {z⁺, z_adv}, N) + λ₁·L_con(z_adv, {z⁺}, N) + λ₂·L_RTD                             (eq. 10)

with L_con the multi-positive InfoNCE of eq. 9 (:class:`advcl.losses.multi_positive_infonce.MultiPositiveInfoNCE`,
τ = 0.05 as SimCSE) and L_RTD replaced-token detection (eq. 8, :class:`advcl.losses.replaced_token_detection.
ReplacedTokenDetection`): a frozen masked-LM generator fills 15 % masked tokens (x''), a discriminator reads
``X'' + η`` with h (view 1's sentence embedding) in place of the first token and predicts which tokens were
replaced; its gradient reaches the encoder through h.

η starts from a token-level memory (Algorithm 1's 𝒱, after Li & Qiu 2021): one row per vocabulary entry,
initialised ``U(−σ, σ)/√D``; each step's final η is written back to the rows of its tokens (the mean over a
token's positions in the batch). It is a buffer, saved with the checkpoints so that a resumed run repeats itself.

The generator is ``objective.generator``: a run folder trained with objective ``mlm``
(``recipes/mlm_head_sentences.toml`` writes ``runs/mlm_head_sentences``, the default) or a Hugging Face
masked-LM folder. An empty value is refused (no silent fallback to an untrained head); ``rtd = false`` needs none.

Ablations: ``rtd = false``; ``perturbation.token_level = false`` (η = 0: sentence level only);
``perturbation.sentence_level = false`` (δ = 0, z_adv is then a third dropout view: token level only);
``perturbation.rho`` in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from advcl.config.ranges import fraction, not_negative
from advcl.config.validate import RecipeError, component
from advcl.errors import BadInput
from advcl.hookspecs import hookimpl
from advcl.modeling.mlm import TRAIN_ONE, replace_tokens
from advcl.objectives.base import StepOutput, create
from advcl.objectives.simcse import SimCSE
from advcl.perturbers.matrix import matrix_gradient
from advcl.perturbers.robustsentembed import RobustPerturbationConfig, robust_perturbation
from advcl.runs.masked_lm import load_masked_lm
from advcl.runtime.distributed import gather_rows


@dataclass
class Generator:
    """The frozen masked LM (a plain attribute, so neither trained nor checkpointed) and its [MASK] id."""

    masked_lm: torch.nn.Module
    mask_token_id: int


class RobustSentEmbed(SimCSE):
    """Two-positive InfoNCE with a token- and sentence-level adversarial view, λ₁ regulariser, λ₂ RTD."""

    name = "robustsentembed"

    @dataclass
    class Config:
        perturbation: RobustPerturbationConfig = field(default_factory=RobustPerturbationConfig)
        contrast: object = component("loss", "multi_positive_infonce")  # τ = 0.05
        regulariser_weight: float = 1 / 128  # λ₁
        rtd: bool = True
        rtd_weight: float = 0.005  # λ₂
        detector: object = component("loss", "replaced_token_detection")
        generator: str = "runs/mlm_head_sentences"  # an mlm run folder or a Hugging Face masked-LM folder
        mask_rate: float = 0.15  # share of each sentence the generator refills

        def __post_init__(self):
            not_negative("objective.regulariser_weight", self.regulariser_weight)
            not_negative("objective.rtd_weight", self.rtd_weight)
            fraction("objective.mask_rate", self.mask_rate, below_one=True)
            if self.rtd and not self.generator:
                raise RecipeError(
                    f"'objective.generator' is empty: replaced-token detection needs a masked LM ({TRAIN_ONE} and "
                    "give its run folder, or a Hugging Face masked-LM folder), or set objective.rtd = false"
                )

    def __init__(self, config, model=None, **kwargs):
        super().__init__(config, model=model, **kwargs)
        embeddings = model.word_embeddings
        if config.perturbation.token_level:
            scale = config.perturbation.init_mag / embeddings.embedding_dim**0.5
            memory = torch.empty_like(embeddings.weight.detach()).uniform_(-scale, scale)
            self.register_buffer("token_memory", memory)  # 𝒱
            # written alike on every process (``remember`` gathers every process's rows): DDP need not broadcast it
            self.rank_consistent_buffers = ("token_memory",)
        if config.rtd:
            try:
                masked_lm, tokenizer = load_masked_lm(config.generator)
            except BadInput as exc:
                raise BadInput(f"objective.generator: {exc}") from None
            if masked_lm.config.vocab_size != embeddings.num_embeddings:
                raise BadInput(
                    f"objective.generator {config.generator} has a vocabulary of {masked_lm.config.vocab_size} "
                    f"tokens, the encoder {embeddings.num_embeddings}: they must share one tokenizer"
                )
            self.generator = Generator(masked_lm, tokenizer.mask_token_id)
            self.detector = create(config.detector, encoder=model.hf.base_model)

    def step(self, batch, model, ctx):
        c, p = self.config, self.config.perturbation
        views = self.views(batch, model)
        n, inputs, mask = len(views.z1), views.inputs, views.inputs["attention_mask"]
        embeds = views.embeds[:n]  # E = W[ids]
        positive = views.z2.detach()

        def attack_loss(perturbed):  # L_con(X + δ + η, {X⁺})
            return self.contrast(self.head(model(inputs_embeds=perturbed, **inputs).sentence), positive)

        eta = self.token_memory[batch["input_ids"]] if p.token_level else torch.zeros_like(embeds)
        delta, eta = robust_perturbation(attack_loss, embeds.detach(), mask, eta, p)
        if p.token_level:
            self.remember(batch["input_ids"], mask, eta)
        z_adv = self.head(model(inputs_embeds=embeds + delta, **inputs).sentence)
        robust = self.contrast(views.z1, views.z2, z_adv)
        regulariser = self.contrast(z_adv, views.z2)
        loss = robust + c.regulariser_weight * regulariser
        logs = {"contrast": robust.item(), "regulariser": regulariser.item()}
        if c.rtd:
            generator = self.generator
            tokens = {"input_ids": batch["input_ids"], **inputs}
            edited, replaced = replace_tokens(generator.masked_lm, generator.mask_token_id, tokens, c.mask_rate)
            h = views.output.sentence[:n]  # the sentence embedding of X, the view z comes from
            rtd = self.detector(edited, eta, h, replaced, mask, inputs.get("token_type_ids"))
            loss = loss + c.rtd_weight * rtd
            logs |= {"rtd": rtd.item(), "replaced": replaced.sum().item() / mask.sum().item()}
        return StepOutput(loss, logs)

    @torch.no_grad()
    def remember(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, eta: torch.Tensor) -> None:
        """𝒱[w] ← the mean of η over the batch positions holding token w (Algorithm 1, ``𝒱[w_i] ← η_i``); under
        torchrun over the positions of every process's batch, so that every process holds the same 𝒱."""
        rows, sums, position_row = matrix_gradient(eta, input_ids, attention_mask)
        counts = torch.bincount(position_row, minlength=len(rows)).unsqueeze(-1).to(sums.dtype)
        rows, sums, counts = gather_rows(rows, sums, counts)
        rows, merged = torch.unique(rows, return_inverse=True)  # a token in several processes' batches: one row
        sums = sums.new_zeros(len(rows), sums.shape[-1]).index_add_(0, merged, sums)
        counts = counts.new_zeros(len(rows), 1).index_add_(0, merged, counts)
        self.token_memory[rows] = (sums / counts).to(self.token_memory.dtype)


@hookimpl
def register_objectives(register):
    register(RobustSentEmbed)
