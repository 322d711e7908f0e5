"""Text-space attacks: TextAttack recipes run offline against advcl models.

- :mod:`advcl.attacks.resources` prepares and checks the folder of offline resources (WordNet, NLTK data,
  counter-fitted word vectors) and points TextAttack and NLTK at it.
- :mod:`advcl.attacks.counterfit` builds the counter-fitted word vectors (Mrkšić et al. 2016).
- :mod:`advcl.attacks.recipes` registers the attack components (TextAttack recipes with offline stand-ins).
- :mod:`advcl.attacks.victim` wraps an :class:`~advcl.modeling.encoder.EncoderClassifier` as TextAttack's victim.
- :mod:`advcl.attacks.runner` attacks a seeded sample, resumably, into ``results*.jsonl``, and summarises it.
- :mod:`advcl.attacks.advsts` and :mod:`advcl.attacks.deviation`: AdvSTS, attacks on STS pairs that move the
  predicted similarity away from the gold score (its victim: :class:`~advcl.attacks.victim.SentenceVictim`).
"""
