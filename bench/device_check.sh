#!/usr/bin/env bash
# bench/device_check.sh: every GPU figure drawlab claims, from one run of at most 8 minutes on a host with one GPU.
#
#   bash bench/device_check.sh --dry-run [--pack DIR]    # anywhere, no GPU, < 30 s: is every input there? the plan
#   bash bench/device_check.sh [--pack DIR] [--out DIR]  # on the GPU host
#
# Options: --pack DIR       the packed dataset folder (default data/iclevr-pack, or $DEVICE_CHECK_PACK)
#          --out DIR        where everything goes (default $OUT when set, else bench/results/device-<date>/)
#          --long-minutes M LatteGAN's wall-clock budget of GAN training in the long run (default 0.5; GeNeVA-GAN gets
#                           as many steps; both first warm-start their generators for 300 steps)
#          --budget S       the worst case the plan must fit, seconds (default 480 = 8 minutes)
#          $PYTHON          the interpreter (default .venv/bin/python if there, else python3)
#          $DEVICE_CHECK_COMMIT  names the code in the summary where the copy has no .git
#
# Steps, each under its own `timeout` (a failed or hung step is recorded and the next one runs):
#   env            python, torch, CUDA, the GPU and its memory (nvidia-smi and torch.cuda); stops if torch sees no GPU
#   lattegan_step  bench/lattegan_step.py: `paper` at batch 64, bf16 autocast, channels_last, fused Adam, the
#                  generator eager and compiled: turn-images/s and peak GPU memory
#   <system>_step  the other systems' step benches: each row of OTHER_BENCHES below whose script exists
#   long           tools/geneva_long.py on the pack: LatteGAN for M minutes, then GeNeVA-GAN for as many steps
#                  (their run folders go to a fresh $TMPDIR folder: a run of the same name would be resumed)
#   loader         bench/geneva_loader.py on the pack (the long step makes its dialogues and embeddings): turns/s
#                  with 0 and 8 workers, from which the summary computes the data loader's share of the `paper` step
# Everything goes to one folder: <step>.log (each command's output), env.json, steps.tsv, long/ (the runs' records),
# summary.md and summary.json (the device, torch, every command with its limit, wall time and status, the figures).
# Under $OUT, where a remote runner may bring back only 8 files, a folder of more is packed into
# device-check.tar.gz, and only it and the two summaries are left beside it.
#
# The pack holds what a GPU machine without PyPI cannot make (the evaluator and the TIRG-fine-tuned encoder, 49 MB).
# Make it on a CPU machine -- about an hour from scratch -- with `python tools/geneva_long.py --pack data/iclevr-pack`,
# and send data/iclevr-pack along with the working tree (it is git-ignored). Figures go to bench/results/.
set -uo pipefail
export LC_NUMERIC=C PYTHONUNBUFFERED=1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
abspath() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s' "$PWD/$1" ;; esac; }

# ---------------------------------------------------------------- the other systems' step benches (data)
# name            script                      limit_s  arguments: each system's GPU configuration
OTHER_BENCHES='
attngan_step      bench/attngan_step.py       90       --preset paper-birds --batch 32 --compile
geneva_gan_step   bench/geneva_gan_step.py    60       --preset paper --batch 64 --compile
pastegan_step     bench/pastegan_step.py      90       --preset paper-vg --batch 32 --compile
semantic_pyramid_step bench/semantic_pyramid_step.py 90 --preset paper --batch 32 --compile
words_by_drawing_step bench/words_by_drawing_step.py 90 --preset paper-edited --batch 128 --compile
'
KILL_AFTER=5     # seconds between a step's TERM and its KILL
OVERHEAD=5       # seconds for the summary and the archive

# ---------------------------------------------------------------- options
DRY=0; PACK=""; OUT_DIR=""; LONG_MIN=0.5; BUDGET=480
while (($#)); do
  case $1 in
    --dry-run) DRY=1 ;;
    --pack) PACK=$(abspath "${2:?--pack needs a folder}"); shift ;;
    --pack=*) PACK=$(abspath "${1#*=}") ;;
    --out) OUT_DIR=$(abspath "${2:?--out needs a folder}"); shift ;;
    --out=*) OUT_DIR=$(abspath "${1#*=}") ;;
    --long-minutes) LONG_MIN=${2:?--long-minutes needs a number}; shift ;;
    --budget) BUDGET=${2:?--budget needs seconds}; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "device_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
cd "$ROOT" || exit 2
[[ -n $PACK ]] || PACK=$(abspath "${DEVICE_CHECK_PACK:-data/iclevr-pack}")
DEVICE_MODE=0
if [[ -z $OUT_DIR && -n ${OUT:-} ]]; then OUT_DIR=$(abspath "$OUT"); DEVICE_MODE=1; fi
[[ -n $OUT_DIR ]] || OUT_DIR="$ROOT/bench/results/device-$(date -u +%Y-%m-%d-%H%M)"
# the long run's own run folders (checkpoints, samples): fresh each time, since a run of the same name is resumed
RUNS_ROOT="${TMPDIR:-/tmp}/drawlab-device-check-runs-$(date -u +%Y%m%d-%H%M%S)-$$"
if [[ -n ${PYTHON:-} ]]; then PY=$PYTHON
elif [[ -x $ROOT/.venv/bin/python ]]; then PY=$ROOT/.venv/bin/python
else PY=$(command -v python3 || command -v python || echo python3); fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"   # bench/ and tools/ scripts import lib without an install
rel() { case $1 in "$ROOT"/*) printf '%s' "${1#"$ROOT"/}" ;; *) printf '%s' "$1" ;; esac; }
MAKE_PACK="python tools/geneva_long.py --pack $(rel "$PACK")"
if ! [[ $LONG_MIN =~ ^[0-9]+([.][0-9]+)?$ && $BUDGET =~ ^[0-9]+$ ]]; then
  echo "device_check: --long-minutes must be a number and --budget whole seconds" >&2; exit 2
fi

# ---------------------------------------------------------------- the plan
S_NAME=(); S_LIMIT=(); S_NEEDS=(); S_CMD=(); S_SHOW=(); S_SCRIPT=()
quote() { local a out=""; for a in "$@"; do out+="${out:+ }$(printf '%q' "$a")"; done; printf '%s' "$out"; }
add_step() {   # name limit_s needs(-|pack) script|- command...
  S_NAME+=("$1"); S_LIMIT+=("$2"); S_NEEDS+=("$3"); S_SCRIPT+=("$4"); shift 4
  S_CMD+=("$(quote "$@")"); S_SHOW+=("$(quote "$@")")
}
ENV_PY=$(cat <<'PY'

import json, os, platform, shutil, subprocess, sys, time
facts = {"time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "host": platform.node(),
         "platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
         "python_executable": sys.executable, "commit": os.environ.get("DEVICE_CHECK_COMMIT") or None}
smi = shutil.which("nvidia-smi")
if smi:
    q = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                       capture_output=True, text=True, timeout=30)
    facts["nvidia_smi"] = (q.stdout or q.stderr).strip()
    print(subprocess.run([smi], capture_output=True, text=True, timeout=30).stdout)
else:
    facts["nvidia_smi"] = None
import torch
facts.update(torch=torch.__version__, torch_cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
             cuda_available=torch.cuda.is_available())
if facts["cuda_available"]:
    p = torch.cuda.get_device_properties(0)
    free, total = torch.cuda.mem_get_info()
    facts.update(gpu=torch.cuda.get_device_name(0), gpu_count=torch.cuda.device_count(), capability=f"{p.major}.{p.minor}",
                 multiprocessors=p.multi_processor_count, gpu_memory_gib=round(total / 2**30, 2),
                 gpu_memory_free_gib=round(free / 2**30, 2))
for k, v in facts.items(): print(f"{k}: {v}")
with open(sys.argv[1], "w") as f: json.dump(facts, f, indent=1)
PY
)
# the long run's limit, from the first H200 run (bench/results/2026-12-04-nvidia-h200): preparing the pack 47 s, a
# warm start of 900 steps ~85 s (300 here, for both systems: 45 s), GeNeVA-GAN twice LatteGAN's speed, evaluations
LONG_LIMIT=$(awk -v m="$LONG_MIN" 'BEGIN { s = 60 + 45 + 60 * m + 30 * m + 40; printf "%d", (s == int(s)) ? s : int(s) + 1 }')
ENV_LIMIT=20; LATTE_LIMIT=215; LOADER_LIMIT=30
add_step env "$ENV_LIMIT" - - "$PY" -c "$ENV_PY" "$OUT_DIR/env.json"
S_SHOW[0]="$(quote "$PY") -c \"\$ENV_PY\" $(quote "$OUT_DIR/env.json")   # environment facts (ENV_PY in this script)"
# the compiled run needs its compilation: the first H200 run's cold compile of the `paper` G took over 130 s
add_step lattegan_step "$LATTE_LIMIT" - bench/lattegan_step.py \
  "$PY" bench/lattegan_step.py --preset paper --batch 64 --compile --steps 10 --warmup 2
ABSENT=(); DEFERRED=()
# the other benches join in their order while the whole plan stays within the budget; the rest are named with the
# command that runs them alone (a later GPU session, or this one with time left)
FIXED=$((OVERHEAD + ENV_LIMIT + LATTE_LIMIT + LONG_LIMIT + LOADER_LIMIT + 4 * KILL_AFTER))   # env, lattegan_step, long, loader
while read -r name script limit args; do
  [[ -n ${name:-} ]] || continue
  if [[ ! -f $script ]]; then ABSENT+=("$script"); continue; fi
  read -r -a argv <<<"$args"
  if ((FIXED + limit + KILL_AFTER <= BUDGET)); then
    add_step "$name" "$limit" - "$script" "$PY" "$script" "${argv[@]}"
    FIXED=$((FIXED + limit + KILL_AFTER))
  else DEFERRED+=("$name|$(quote "$PY" "$script" "${argv[@]}")"); fi
done <<<"$OTHER_BENCHES"
# prepare (dialogues + embeddings, ~50 s) + both warm starts + LatteGAN for M minutes + GeNeVA-GAN as many steps + evaluations
add_step long "$LONG_LIMIT" pack tools/geneva_long.py \
  "$PY" tools/geneva_long.py --data-dir "$PACK" --out "$OUT_DIR/long" --minutes "$LONG_MIN" --batch 64 --num-workers 8 --warm-start-steps 300 \
  --runs-root "$RUNS_ROOT"
add_step loader "$LOADER_LIMIT" pack bench/geneva_loader.py \
  "$PY" bench/geneva_loader.py --data "$PACK" --batch 64 --workers 0 8 --batches 20
N=${#S_NAME[@]}
TOTAL=$OVERHEAD
for ((i = 0; i < N; i++)); do TOTAL=$((TOTAL + S_LIMIT[i] + KILL_AFTER)); done

print_plan() {
  echo "plan: $N steps, each under timeout -k $KILL_AFTER <limit>; output to $OUT_DIR"
  for ((i = 0; i < N; i++)); do printf '  %d. %-16s %4d s  %s\n' $((i + 1)) "${S_NAME[i]}" "${S_LIMIT[i]}" "${S_SHOW[i]}"; done
  local s; for s in ${ABSENT[@]+"${ABSENT[@]}"}; do printf '  -  %-16s    -    not run: %s does not exist yet\n' "" "$s"; done
  for s in ${DEFERRED[@]+"${DEFERRED[@]}"}; do
    printf '  -  %-16s    -    deferred: over the budget with the steps above; alone: %s\n' "${s%%|*}" "${s#*|}"
  done
  echo "total $TOTAL s worst case (the limits, $KILL_AFTER s to kill each, $OVERHEAD s for the summary); budget $BUDGET s"
  echo "the long run's run folders: $RUNS_ROOT"
}

# ---------------------------------------------------------------- checks
PROBLEMS=(); NOTES=()
problem() { PROBLEMS+=("$1"); }
check_tools() {
  local t; for t in timeout tee mkfifo awk tar; do command -v "$t" >/dev/null || problem "command '$t' not found (coreutils)"; done
  command -v "$PY" >/dev/null 2>&1 || problem "python interpreter '$PY' not found (set PYTHON)"
  command -v nvidia-smi >/dev/null || NOTES+=("no nvidia-smi here (expected on a CPU machine; the GPU host needs one)")
}
PACK_OK=1
check_pack() {
  if [[ ! -d $PACK ]]; then
    PACK_OK=0; problem "pack folder $PACK is missing: make it on a CPU machine (about an hour from scratch) with: $MAKE_PACK"
    return
  fi
  local missing=() enc="$PACK/tirg-minilm" f
  [[ -s $PACK/clevr_compact_best_checkpoint.pth || -s $PACK/iclevr_inception_best_checkpoint.pth ]] ||
    missing+=("clevr_compact_best_checkpoint.pth (the evaluator)")
  if [[ -d $enc ]]; then
    for f in tirg.json config.json tokenizer_config.json; do [[ -s $enc/$f ]] || missing+=("tirg-minilm/$f"); done
    [[ -s $enc/model.safetensors || -s $enc/pytorch_model.bin ]] || missing+=("tirg-minilm/model.safetensors (the encoder's weights)")
    [[ -s $enc/tokenizer.json || -s $enc/vocab.txt ]] || missing+=("tirg-minilm/tokenizer.json or vocab.txt")
  else missing+=("tirg-minilm/ (the TIRG-fine-tuned encoder)"); fi
  if ((${#missing[@]})); then
    PACK_OK=0
    local list="" m; for m in "${missing[@]}"; do list+="${list:+, }$m"; done
    problem "pack folder $PACK lacks $list; remake it with: $MAKE_PACK"
    return
  fi
  local mb; mb=$(du -sm "$PACK" 2>/dev/null | cut -f1)
  NOTES+=("pack $(rel "$PACK"): ${mb:-?} MiB$([[ $PACK == "$ROOT"/* ]] || echo ", outside the repository: a runner that sends the working tree will not take it")")
  [[ ${mb:-0} -le 60 ]] || NOTES+=("pack is over 60 MiB: with the working tree it may not fit a 64 MiB transfer")
}
check_out() {
  local d=$OUT_DIR
  while [[ ! -e $d ]]; do d=$(dirname "$d"); done
  [[ -d $d && -w $d ]] || problem "output folder $OUT_DIR cannot be written ($d is not a writable folder)"
}
check_budget() {
  ((TOTAL <= BUDGET)) || problem "the plan's worst case is $TOTAL s, over the budget of $BUDGET s: lower --long-minutes or a step's limit"
}
CHECK_PY=$(cat <<'PY'

import contextlib, io, json, re, runpy, sys, time
from pathlib import Path
bad = 0
t = time.perf_counter()
try:
    import lib.systems.lattegan, lib.systems.geneva
    print(f"ok   import lib.systems.lattegan, lib.systems.geneva ({time.perf_counter() - t:.1f} s)")
except Exception as e:
    bad += 1; print(f"FAIL import lib.systems.lattegan, lib.systems.geneva: {type(e).__name__}: {e}")
for spec in sys.argv[2:]:                                  # "script flag flag ...": answers --help and takes the flags
    script, *flags = spec.split()
    if not Path(script).is_file():
        bad += 1; print(f"FAIL {script}: no such file"); continue
    buf, argv = io.StringIO(), sys.argv
    sys.argv = [script, "--help"]
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf): runpy.run_path(script, run_name="__main__")
        code = "returned without exiting"
    except SystemExit as e:
        code = e.code or 0
    except Exception as e:
        code = f"{type(e).__name__}: {e}"
    finally:
        sys.argv = argv
    text = buf.getvalue()
    unknown = [f for f in flags if not re.search(r"(?<![\w-])" + re.escape(f) + r"(?![\w-])", text)]
    if code != 0 or "usage:" not in text:
        bad += 1; print(f"FAIL {script} --help: {code}\n{text[-2000:]}")
    elif unknown:
        bad += 1; print(f"FAIL {script}: its --help lists no {unknown} (the plan passes them)")
    else:
        print(f"ok   {script} --help (takes {len(flags)} planned options)")
pack = Path(sys.argv[1])
for name in ("tirg.json", "config.json"):                 # the pack files read as JSON must parse
    p = pack / "tirg-minilm" / name
    if p.is_file() and p.stat().st_size:
        try: assert isinstance(json.loads(p.read_text()), dict)
        except Exception: bad += 1; print(f"FAIL {p}: not a JSON object; remake the pack")
sys.exit(1 if bad else 0)
PY
)
check_python() {   # the modules import; each script answers --help and takes the options the plan gives it
  local specs=() i s
  for ((i = 0; i < N; i++)); do
    s=${S_SCRIPT[i]}; [[ $s == - ]] && continue
    specs+=("$s $(grep -oE -- '(^| )--[a-z][a-z0-9-]*' <<<"${S_CMD[i]}" | tr -d ' ' | tr '\n' ' ')")
  done
  local out; out=$("$PY" -c "$CHECK_PY" "$PACK" "${specs[@]}" 2>&1); local rc=$?
  printf '%s\n' "$out" | sed 's/^/  /'
  ((rc == 0)) || problem "python checks failed (FAIL lines above)"
}
check_unlisted() {   # a step bench nobody put in OTHER_BENCHES would be silently skipped
  local f; for f in bench/*_step.py; do
    [[ -f $f && $f != bench/lattegan_step.py ]] || continue
    grep -qE "^[a-z0-9_]+ +$f " <<<"$OTHER_BENCHES" ||
      problem "$f is not in OTHER_BENCHES (bench/device_check.sh): add its row (name, script, limit, GPU arguments)"
  done
}

if ((DRY)); then
  echo "device_check --dry-run: $ROOT, python $PY"
  check_tools; check_out; check_pack; check_unlisted; check_budget
  echo "python checks:"; check_python
  print_plan
  for n in ${NOTES[@]+"${NOTES[@]}"}; do echo "note: $n"; done
  if ((${#PROBLEMS[@]})); then
    echo "dry run: ${#PROBLEMS[@]} problem(s):" >&2
    for p in "${PROBLEMS[@]}"; do echo "  - $p" >&2; done
    exit 1
  fi
  echo "dry run: every input is there"
  exit 0
fi

# ---------------------------------------------------------------- the run
check_tools; check_out; check_budget
if ((${#PROBLEMS[@]})); then for p in "${PROBLEMS[@]}"; do echo "device_check: $p" >&2; done; exit 2; fi
check_pack                       # a missing pack skips the steps that need it; the others still run
for p in ${PROBLEMS[@]+"${PROBLEMS[@]}"}; do echo "device_check: warning: $p (its steps are skipped)" >&2; done
if [[ -z ${DEVICE_CHECK_COMMIT:-} ]] && git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  DEVICE_CHECK_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)
  [[ -z $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]] || DEVICE_CHECK_COMMIT+=" with uncommitted changes"
fi
export DEVICE_CHECK_COMMIT=${DEVICE_CHECK_COMMIT:-}
mkdir -p "$OUT_DIR" || exit 2
STEPS_TSV="$OUT_DIR/steps.tsv"; : >"$STEPS_TSV"
FIFO_DIR=$(mktemp -d) || exit 2
INTERRUPTED=0; CHILD=""
on_signal() { INTERRUPTED=1; [[ -n $CHILD ]] && kill -TERM "$CHILD" 2>/dev/null; }
trap on_signal INT TERM
now() { if [[ -n ${EPOCHREALTIME:-} ]]; then printf '%s' "$EPOCHREALTIME"; else date +%s; fi; }
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$STEPS_TSV"; }   # name limit wall rc status command

run_step() {
  local i=$1 name=${S_NAME[$1]} limit=${S_LIMIT[$1]} log="$OUT_DIR/${S_NAME[$1]}.log" fifo="$FIFO_DIR/$1" t0 t1 rc status
  local -a argv; eval "argv=(${S_CMD[i]})"
  printf '$ %s\n# limit %s s, started %s\n' "${S_SHOW[i]}" "$limit" "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" >"$log"
  echo "== [$((i + 1))/$N] $name (limit $limit s): ${S_SHOW[i]}"
  mkfifo "$fifo" || { record "$name" "$limit" 0 - "failed (mkfifo)" "${S_SHOW[i]}"; return; }
  tee -a "$log" <"$fifo" & local tee_pid=$!
  t0=$(now)
  # not --foreground: on time-out the whole process group goes (DataLoader and compile workers too)
  timeout -k "$KILL_AFTER" "$limit" "${argv[@]}" >"$fifo" 2>&1 &
  CHILD=$!
  wait "$CHILD"; rc=$?
  if ((INTERRUPTED)); then wait "$CHILD" 2>/dev/null; rc=130; fi
  CHILD=""
  t1=$(now)
  local k; for ((k = 0; k < 50; k++)); do kill -0 "$tee_pid" 2>/dev/null || break; sleep 0.1; done   # the log drains;
  kill "$tee_pid" 2>/dev/null; wait "$tee_pid" 2>/dev/null; rm -f "$fifo"          # a writer that escaped gets 5 s
  case $rc in
    0) status=ok ;; 124) status="timed out" ;; 137) status="killed after timing out" ;; 130) status=interrupted ;;
    *) status="failed (exit $rc)" ;;
  esac
  local wall; wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  printf '# %s after %s s\n' "$status" "$wall" >>"$log"
  echo "== $name: $status after $wall s"
  record "$name" "$limit" "$wall" "$rc" "$status" "${S_SHOW[i]}"
}

echo "device_check: $ROOT -> $OUT_DIR"
print_plan
SKIP_REST=""
for ((i = 0; i < N; i++)); do
  if ((INTERRUPTED)); then SKIP_REST="interrupted"; fi
  if [[ -n $SKIP_REST ]]; then record "${S_NAME[i]}" "${S_LIMIT[i]}" 0 - "skipped: $SKIP_REST" "${S_SHOW[i]}"; continue; fi
  if [[ ${S_NEEDS[i]} == pack ]] && ((!PACK_OK)); then
    record "${S_NAME[i]}" "${S_LIMIT[i]}" 0 - "skipped: pack missing ($MAKE_PACK)" "${S_SHOW[i]}"; continue
  fi
  run_step "$i"
  if [[ ${S_NAME[i]} == env ]] && grep -q '"cuda_available": false' "$OUT_DIR/env.json" 2>/dev/null; then
    SKIP_REST="no CUDA device (use --dry-run on a CPU machine)"
  fi
done
rmdir "$FIFO_DIR" 2>/dev/null

SUMMARY_PY=$(cat <<'PY'

import json, re, statistics, sys
from pathlib import Path
out, archive = Path(sys.argv[1]), sys.argv[2] == "1"
BATCH = 64
steps = [dict(zip(("name", "limit_s", "wall_s", "rc", "status", "command"), l.split("\t", 5)))
         for l in (out / "steps.tsv").read_text().splitlines() if l]
env = json.loads((out / "env.json").read_text()) if (out / "env.json").is_file() else {}
def log(name):
    p = out / f"{name}.log"
    return p.read_text(errors="replace") if p.is_file() else ""
STEP = re.compile(r"^(?P<preset>\S+)\s+batch\s+(?P<batch>\d+)\s+(?P<label>.+?)\s+(?P<s_per_step>[\d.]+) s/step\s+"
                  r"(?P<turn_images_per_s>[\d.]+) turn-images/s\s+(?P<peak_gib>[\d.]+) GiB", re.M)
def step_rows(text):
    return [{k: (float(v) if k in ("s_per_step", "turn_images_per_s", "peak_gib") else int(v) if k == "batch" else v)
             for k, v in m.groupdict().items()} for m in STEP.finditer(text)]
lattegan = step_rows(log("lattegan_step"))
loader = [{"workers": int(w), "turns_per_s": float(r)} for w, r in re.findall(r"workers (\d+):\s+([\d.]+) turns/s", log("loader"))]
share = []
for s in lattegan:
    for l in loader:
        load = s["batch"] / l["turns_per_s"]               # seconds to load one batch
        if l["workers"] == 0:                              # in the training process, before each step
            f, how = load / (load + s["s_per_step"]), "serial: load / (load + step)"
        else:                                              # in parallel workers: the step waits only when they lag
            f, how = max(0.0, 1 - l["turns_per_s"] / s["turn_images_per_s"]), "overlapped: max(0, 1 - loader rate / step rate)"
        share.append({"step": s["label"], "workers": l["workers"], "load_s_per_batch": round(load, 4),
                      "step_s": s["s_per_step"], "share": round(f, 4), "how": how})
long_text = log("long")
long = {"prepare": re.findall(r"^\[prepare\] .*ready in .*$", long_text, re.M),
        "trained": re.findall(r"^\[(?:lattegan|geneva_gan)\] \d+ steps of .*$", long_text, re.M),
        "table": [], "runs": {}}
lines = long_text.splitlines()
for i, l in enumerate(lines):
    if re.search(r"\bAP\s+AR\s+F1\s+RSIM\b", l):
        long["table"] = [l] + [x for x in lines[i + 1:i + 4] if re.search(r"\d\.\d{3}", x)]
for run in sorted((out / "long").glob("*/metrics.jsonl")):
    recs = [json.loads(x) for x in run.read_text().splitlines() if x.strip()]
    ips = [r["images_per_s"] for r in recs if r.get("kind") == "train" and "images_per_s" in r]
    ev = [r for r in recs if r.get("kind") == "eval" and r.get("metric") == "geneva"]
    long["runs"][run.parent.name] = {"train_records": len(ips), "images_per_s_median": round(statistics.median(ips), 1) if ips else None,
                                     "images_per_s_last": round(ips[-1], 1) if ips else None,
                                     "last_eval": {k: ev[-1].get(k) for k in ("step", "F1", "RSIM")} if ev else None}
other = {s["name"]: step_rows(log(s["name"])) for s in steps if s["name"] not in ("env", "lattegan_step", "long", "loader")}
gpu = env.get("gpu") or "no CUDA device"
device = f"{gpu}" + (f", {env['gpu_memory_gib']} GiB" if env.get("gpu_memory_gib") else "") + \
         (f" (nvidia-smi: {env['nvidia_smi']})" if env.get("nvidia_smi") else " (no nvidia-smi)")
summary = {"device": device, "env": env, "steps": steps, "lattegan_step": lattegan, "loader": loader,
           "loader_share": share, "long": long, "other_benches": other}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
e = lambda k, d="?": env.get(k) if env.get(k) is not None else d
md = [f"# drawlab device check, {e('time_utc')} UTC", "",
      f"- device: {device}",
      f"- torch {e('torch')} (CUDA {e('torch_cuda')}, cuDNN {e('cudnn')}), python {e('python')} ({e('python_executable')}), "
      f"{e('cpus')} CPUs, host {e('host')}",
      f"- code: {e('commit', 'unknown (set DEVICE_CHECK_COMMIT where the copy has no .git)')}", "",
      "## Commands", "", "| step | limit s | wall s | status | command |", "| --- | ---: | ---: | --- | --- |"]
md += [f"| {s['name']} | {s['limit_s']} | {s['wall_s']} | {s['status']} | `{s['command'].replace('|', '&#124;')}` |" for s in steps]
md += ["", "## LatteGAN `paper` step (bench/lattegan_step.py; random inputs, no data pipeline)", ""]
md += [f"- {r['label']}: {r['s_per_step']:.3f} s/step, {r['turn_images_per_s']:.1f} turn-images/s, "
       f"{r['peak_gib']:.2f} GiB peak (batch {r['batch']})" for r in lattegan] or ["- no figures (see lattegan_step.log)"]
md += ["", f"## Data loader (bench/geneva_loader.py, 128 px, batch {BATCH}) and its share of the step", ""]
md += [f"- workers {l['workers']}: {l['turns_per_s']:.0f} turns/s" for l in loader] or ["- no figures (see loader.log)"]
md += [f"- {x['step']}, workers {x['workers']}: the loader is {100 * x['share']:.1f}% of the step ({x['how']}; "
       f"{x['load_s_per_batch']:.3f} s to load a batch, {x['step_s']:.3f} s a step)" for x in share]
md += ["", "## Long run from the pack (tools/geneva_long.py)", ""]
md += [f"- {x}" for x in long["prepare"] + long["trained"]]
md += [f"- {name}: {r['images_per_s_median']} images/s median, {r['images_per_s_last']} last, over {r['train_records']} "
       f"records; last evaluation {r['last_eval']}" for name, r in long["runs"].items()]
md += ["", "```", *long["table"], "```"] if long["table"] else ["- no final table (see long.log)"]
if other:
    md += ["", "## The other systems' step benches", ""]
    for n, rows in other.items():
        md.append(f"- {n}: " + ("; ".join(f"{r['label']} {r['turn_images_per_s']:.1f} turn-images/s, {r['peak_gib']:.2f} GiB"
                                          for r in rows) or f"no figures (see {n}.log)"))
if archive:
    md += ["", "Every log and record is in device-check.tar.gz beside this file (the folder held more files than come back)."]
(out / "summary.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
PY
)
FAILED=$(awk -F'\t' '$5 != "ok" { printf "%s%s (%s)", sep, $1, $5; sep = ", " }' "$STEPS_TSV" 2>/dev/null)
MAX_FILES=0; ((DEVICE_MODE)) && MAX_FILES=8
NFILES=$(($(find "$OUT_DIR" -type f | wc -l) + 2))    # + the two summaries
ARCHIVE=0; ((MAX_FILES > 0 && NFILES > MAX_FILES)) && ARCHIVE=1
"$PY" -c "$SUMMARY_PY" "$OUT_DIR" "$ARCHIVE" || echo "device_check: the summary failed; the logs are in $OUT_DIR" >&2
if ((ARCHIVE)); then   # everything into one file; the loose copies go only once it is written
  tardir=$(mktemp -d) && tar -czf "$tardir/device-check.tar.gz" -C "$OUT_DIR" . &&
    find "$OUT_DIR" -mindepth 1 -maxdepth 1 ! -name summary.md ! -name summary.json -exec rm -rf {} + &&
    mv "$tardir/device-check.tar.gz" "$OUT_DIR/" && rmdir "$tardir" &&
    echo "device_check: $NFILES files packed into $OUT_DIR/device-check.tar.gz (beside summary.md and summary.json)"
fi
if [[ -n $FAILED ]]; then echo "device_check: not every step ran clean: $FAILED" >&2; exit 1; fi
echo "device_check: every step ran; summary in $OUT_DIR/summary.md"
