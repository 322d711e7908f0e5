#!/usr/bin/env bash
# docs/results.md, "Robust sentence embeddings": SimCSE, USCAL and RobustSentEmbed from all-MiniLM-L6-v2 on
# 2,560 sentences of the shipped corpus (40 steps of batch 64, length 32; every other setting as the
# *_sentences recipes), seed 0, checkpoint chosen on STS-B validation every 20 steps; the generator of
# RobustSentEmbed's replaced-token detection is a masked-LM head trained first on the same sentences. Then the
# STS suite, the transfer suite (at most 4,000 training rows per task) and AdvSTS-B (textfooler on a seeded 100
# pairs of STS-B test) for the untouched encoder and each run. Runs go to runs/results/sentences/, suite and
# attack results (--json) to runs/results/sentences/*.json.
# Usage: bash docs/results/sentence_embeddings.sh   (from the project root, venv active)
set -euo pipefail
export ADVCL_DATA_DIR=${ADVCL_DATA_DIR:-../shared/data} HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE
out=runs/results/sentences
scale=(--set data.max_train_examples=2560 --set train.eval_every=20 --set run.output_dir=$out --set run.seed=0)
mkdir -p $out
train() {  # name recipe [--set ...]
  local name=$1 recipe=$2; shift 2
  [[ -f $out/$name/report.json ]] && grep -q '"completed"' $out/$name/report.json && return
  advcl train -r recipes/$recipe.toml "${scale[@]}" --set run.name=$name "$@" --overwrite
}
train mlm_head mlm_head_sentences --set train.eval_every=0
train simcse simcse_sentences
train uscal uscal_sentences
train rse rse_sentences --set objective.generator=$out/mlm_head
for model in all-MiniLM-L6-v2 $out/simcse $out/uscal $out/rse; do
  name=$(basename $model)
  [[ -s $out/$name.sts.json ]] || advcl eval -m $model --suite sts --json > $out/$name.sts.json
  [[ -s $out/$name.transfer.json ]] || advcl eval -m $model --suite transfer --max-examples 4000 --json > $out/$name.transfer.json
  [[ -s $out/$name.advsts.json ]] || advcl attack --attack textfooler -m $model --data stsb:test --num-examples 100 \
    --seed 0 --output $out/attacks/$name --json > $out/$name.advsts.json
done
