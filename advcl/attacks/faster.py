"""Drop-in replacements for TextAttack parts that give the same results with fewer, larger model calls.

Import only after :func:`advcl.attacks.resources.activate` (this module imports TextAttack).
"""

from __future__ import annotations

from textattack.search_methods import GreedyWordSwapWIR


class PrefetchingGreedyWordSwapWIR(GreedyWordSwapWIR):
    """Greedy search by word importance whose weighted-saliency ranking (PWWS, Ren et al. 2019, eq. 7-8) costs one
    batched model call instead of one call per word.

    TextAttack's ranking queries the text with each word replaced by UNK (one call), then, word by word, every
    synonym swap of that word (one call each; for ~20 words, ~20 calls of a few texts). These are all known before
    the first call, so this runs the model on all of them at once and leaves the outputs in the goal function's own
    cache (``GoalFunction._call_model``); the unchanged ranking then finds every output there. Queries are
    counted as before and the results are the same. Only where the attack caches transformations (all of them
    deterministic, so asking twice yields the same candidates) and the query budget is unlimited (so no output is
    computed that the budget would have cut off).
    """

    def _get_index_order(self, initial_text, max_len=-1):
        attack = getattr(self.get_transformations, "__self__", None)
        if (self.wir_method == "weighted-saliency" and getattr(attack, "use_transformation_cache", False)
                and self.goal_function.query_budget == float("inf")):
            _, indices = self.get_indices_to_order(initial_text)
            texts = [initial_text.replace_word_at_index(i, self.unk_token) for i in indices]
            for i in indices:
                texts += self.get_transformations(initial_text, original_text=initial_text, indices_to_modify=[i])
            self.goal_function._call_model(texts)
        return super()._get_index_order(initial_text, max_len)
