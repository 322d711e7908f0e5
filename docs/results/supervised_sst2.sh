#!/usr/bin/env bash
# docs/results.md, "Embedding-space adversarial training": vanilla, FGSM, FreeLB, SCAL, CAT, CARL and RAR on
# 1,000 SST-2 training sentences (2 epochs, batch 32, lr 5e-5), seeds 0-2; the last checkpoint's clean accuracy
# on the whole validation split (the run's last validation) and its accuracy under PGD-5 (l2, ε .02/.075/.1) on
# a seeded 300 of its sentences. Runs go to runs/results/sst2/<method>-s<seed>.
# Usage: bash docs/results/supervised_sst2.sh [SEEDS...]   (from the project root, venv active;
#        METHODS="scal cat" limits the methods)
set -euo pipefail
export ADVCL_DATA_DIR=${ADVCL_DATA_DIR:-../shared/data} HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE
out=runs/results/sst2
scale=(--set data.max_train_examples=1000 --set train.epochs=2 --set train.lr=5e-5 --set train.eval_every=0
       --set run.output_dir=$out)
# CARL and RAR have AG News recipes; on SST-2 they take the SST-2 FreeLB setting of freelb_sst2 (γ .6, α .1,
# ε 0, K 2) so that FreeLB, CARL and RAR differ only in their extra terms. CARL: L_D from the second epoch
# (32 steps of 32 sentences), 250 negatives (a quarter of the training set, as in carl_agnews).
sst2=(--set data.train=sst2:train --set data.validation=sst2:validation --set model.max_length=64
      --set train.batch_size=32 --set objective.freelb.init_mag=0.6 --set objective.freelb.step_size=0.1
      --set objective.freelb.steps=2)
declare -A recipe=([vanilla]=vanilla_sst2 [fgsm]=fgsm_sst2 [freelb]=freelb_sst2 [scal]=scal_sst2 [cat]=cat_sst2
                   [carl]=carl_agnews [rar]=rar_agnews)
# MiniLM changes (docs/results.md says what each fixes): CARL's L_D on the mean-pooled sentence vector, MiniLM's own;
# RAR's w_r = 0.01, as MiniLM's token states were never trained to predict tokens (L_R starts at 10.9 nats, and at
# w_r = 0.1 its gradient is 4x the cross-entropy's at step 0).
declare -A extra=([carl]="${sst2[*]} --set objective.contrast_start_step=32 --set objective.contrast.num_negatives=250
                          --set model.pooling=mean"
                  [rar]="${sst2[*]} --set objective.reconstruction_weight=0.01")
seeds=("$@"); [[ $# -gt 0 ]] || seeds=(0 1 2)
for seed in "${seeds[@]}"; do
  for method in ${METHODS:-vanilla fgsm freelb scal cat carl rar}; do
    name=$method-s$seed
    [[ -f $out/$name/report.json ]] && grep -q '"robustness"' $out/$name/report.json && continue
    # shellcheck disable=SC2086
    advcl train -r recipes/${recipe[$method]}.toml "${scale[@]}" ${extra[$method]:-} \
      --set run.name=$name --set run.seed=$seed --overwrite
    advcl eval -m $out/$name -d sst2:validation --max-examples 300 --checkpoint last \
      --robust pgd --eps 0.02,0.075,0.1 --steps 5
  done
done
