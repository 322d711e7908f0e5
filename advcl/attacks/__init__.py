"""Text-space attacks: TextAttack recipes run offline against advcl models.

- :mod:`advcl.attacks.resources` prepares and checks the folder of offline resources (WordNet, NLTK data,
  counter-fitted word vectors) and points TextAttack and NLTK at it.
- :mod:`advcl.attacks.counterfit` builds the counter-fitted word vectors (Mrkšić et al. 2016).
- :mod:`advcl.attacks.recipes` registers the attack components (TextAttack recipes with offline stand-ins).
- :mod:`advcl.attacks.victim` wraps an :class:`~advcl.modeling.encoder.EncoderClassifier` as TextAttack's victim.
- :mod:`advcl.attacks.tasks` is the attack goal as one object (:class:`~advcl.attacks.tasks.AttackTask`);
  :mod:`advcl.attacks.goals` builds the label flip (parts in :mod:`advcl.attacks.classification`) and AdvSTS, and
  maps each data task (:mod:`advcl.data.tasks`) to one of them, once per attack.
- :mod:`advcl.attacks.session` turns an :class:`~advcl.attacks.session.AttackRequest` into a built, resumable job.
- :mod:`advcl.attacks.runner` attacks a seeded sample, resumably, into ``results*.jsonl``, and summarises it.
- :mod:`advcl.attacks.adversarial_dataset` writes the adversarial dataset ``advcl perturb`` makes of the results.
- :mod:`advcl.attacks.advsts` and :mod:`advcl.attacks.deviation`: AdvSTS, attacks on STS pairs that move the
  predicted similarity away from the gold score (its victim: :class:`~advcl.attacks.victim.SentenceVictim`).
"""
