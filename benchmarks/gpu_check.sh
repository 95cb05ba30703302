#!/usr/bin/env bash
# One script for a lent GPU machine: environment record, the cuda-marked tests, the NVRTC
# compile test, the kernel benchmarks, and a short summary table printed last.
#
#   bash benchmarks/gpu_check.sh            # everything, well under 6 minutes
#   bash benchmarks/gpu_check.sh --quick    # environment and tests only (no benchmarks)
#   bash benchmarks/gpu_check.sh --bench    # also the optional `gradflow bench` device comparison
#
# Runs from the source tree with PYTHONPATH=. and the machine's own python3 (no network, no
# install). Results go to $OUT (default ./gpu_out), at most 8 files, no sub-folders:
#   env.json  pytest_cuda.log  nvrtc.log  kernels_gpu.json  kernels_gpu.log  profile_mlp.txt
#   summary.txt  [nccl_allreduce.json]  [bench.json  bench.png]  (with --bench: set SKIP_NVRTC=1,
#   SKIP_PROFILE=1 or SKIP_NCCL=1 to stay within 8 files)
# Every step has its own timeout and a failing step does not stop the next one. Step time
# limits (seconds) can be overridden: T_ENV, T_TESTS, T_NVRTC, T_KERNELS, T_PROFILE, T_NCCL, T_BENCH.

set -u -o pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-./gpu_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"

QUICK=0
BENCH=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --bench) BENCH=1 ;;
        -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument '$arg' (use --quick, --bench or --help)" >&2; exit 2 ;;
    esac
done

T_ENV="${T_ENV:-30}"
T_TESTS="${T_TESTS:-150}"
T_NVRTC="${T_NVRTC:-45}"
T_KERNELS="${T_KERNELS:-120}"
T_BENCH="${T_BENCH:-150}"

declare -a SUMMARY=()
START_ALL=$SECONDS

# run_step NAME LIMIT LOG COMMAND...: run with a time limit, output to the terminal and LOG.
run_step() {
    local name="$1" limit="$2" log="$3"
    shift 3
    local started=$SECONDS rc
    echo "=== [$name] (limit ${limit}s): $*"
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    local took=$((SECONDS - started)) note=""
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && note=" TIMED OUT"
    echo "=== [$name] rc=$rc in ${took}s$note"
    STEP_RESULT="rc=$rc ${took}s$note"
}

# pytest_counts LOG: the final "N passed, M failed ..." line of a pytest run.
pytest_counts() {
    local line
    line=$(grep -E '[0-9]+ (passed|failed|error|errors|skipped|deselected)|no tests ran' "$1" 2>/dev/null | tail -n 1)
    line="${line//=/}"
    echo "${line:-no result line (see $1)}" | sed -e 's/^ *//' -e 's/ *$//'
}

# (a) the environment: GPU, driver, CUDA runtime, CuPy, torch, NumPy, date.
run_step env "$T_ENV" /dev/null "$PY" benchmarks/kernels_gpu.py --env-only "$OUT/env.json"
SUMMARY+=("environment        $STEP_RESULT  -> $OUT/env.json")

# (b) the cuda-marked tests, then the NVRTC compile test (which must not skip here).
# pytest-xdist and pytest-timeout are used when installed (the flags would be errors otherwise).
PARALLEL=()
"$PY" -c "import xdist" 2>/dev/null && PARALLEL=(-n 8)
TIMEOUT_120=()
TIMEOUT_60=()
if "$PY" -c "import pytest_timeout" 2>/dev/null; then
    TIMEOUT_120=(--timeout 120)
    TIMEOUT_60=(--timeout 60)
fi
run_step tests "$T_TESTS" "$OUT/pytest_cuda.log" \
    "$PY" -m pytest -q -m cuda "${PARALLEL[@]}" -p no:cacheprovider "${TIMEOUT_120[@]}" --tb=short tests
SUMMARY+=("cuda tests         $STEP_RESULT  $(pytest_counts "$OUT/pytest_cuda.log")")

# SKIP_NVRTC=1 leaves the compile test to CI (it needs no GPU) when device time is short.
if [ "${SKIP_NVRTC:-0}" = 1 ]; then
    SUMMARY+=("nvrtc compile      skipped (SKIP_NVRTC=1; CI runs it)")
else
    run_step nvrtc "$T_NVRTC" "$OUT/nvrtc.log" \
        env GRADFLOW_REQUIRE_NVRTC=1 "$PY" -m pytest -q -p no:cacheprovider "${TIMEOUT_60[@]}" --tb=short \
        tests/test_kernels_compile.py
    SUMMARY+=("nvrtc compile      $STEP_RESULT  $(pytest_counts "$OUT/nvrtc.log")")
fi

# (c) the kernel benchmarks (JSON written after every section, so a timeout keeps the rest).
if [ "$QUICK" = 0 ]; then
    run_step kernels "$T_KERNELS" "$OUT/kernels_gpu.log" \
        "$PY" benchmarks/kernels_gpu.py --json "$OUT/kernels_gpu.json"
    SUMMARY+=("kernel benchmarks  $STEP_RESULT  -> $OUT/kernels_gpu.json")
else
    SUMMARY+=("kernel benchmarks  skipped (--quick)")
fi

# (c2) where the host time of a CUDA training step goes (cProfile of the MLP step).
if [ "$QUICK" = 0 ] && [ "${SKIP_PROFILE:-0}" != 1 ]; then
    run_step profile "${T_PROFILE:-40}" /dev/null \
        "$PY" benchmarks/profile_mlp_gpu.py --out "$OUT/profile_mlp.txt"
    SUMMARY+=("mlp host profile   $STEP_RESULT  -> $OUT/profile_mlp.txt")
fi

# (c3) NCCL all-reduce bus bandwidth through gradflow.distributed, where mpi4py and CuPy's NCCL are
# there (world sizes 1..GPUs). SKIP_NCCL=1 leaves it out.
if [ "$QUICK" = 0 ] && [ "${SKIP_NCCL:-0}" != 1 ] && "$PY" -c "import mpi4py; from cupy.cuda import nccl" 2>/dev/null; then
    run_step nccl "${T_NCCL:-90}" /dev/null \
        "$PY" benchmarks/nccl_allreduce.py --json "$OUT/nccl_allreduce.json"
    SUMMARY+=("nccl all-reduce    $STEP_RESULT  -> $OUT/nccl_allreduce.json")
fi

# (d) OPTIONAL, off by default (the lead runs it separately): the device comparison of
# `gradflow bench`. Enable with --bench; it never fails the script.
if [ "$BENCH" = 1 ] && [ "$QUICK" = 0 ]; then
    run_step bench "$T_BENCH" /dev/null \
        "$PY" -m gradflow.cli bench --devices cpu,cuda --baseline torch --json "$OUT/bench.json" \
        --plot "$OUT/bench.png" --no-progress || true
    SUMMARY+=("gradflow bench     $STEP_RESULT  -> $OUT/bench.json")
fi

# The short summary, last.
{
    echo
    echo "================ gpu_check summary ($((SECONDS - START_ALL))s) ================"
    "$PY" -c 'import json,sys; e=json.load(open(sys.argv[1])); print("GPU:", e.get("gpu"), "| driver", e.get("driver"), "| CUDA runtime", e.get("cuda_runtime"), "| CuPy", e.get("cupy"), "| torch", e.get("torch"), "| NumPy", e.get("numpy"), "|", e.get("date"))' "$OUT/env.json" 2>/dev/null || echo "GPU: (no env.json)"
    for line in "${SUMMARY[@]}"; do echo "$line"; done
    if [ "$QUICK" = 0 ] && [ -f "$OUT/kernels_gpu.json" ]; then
        echo
        timeout 30 "$PY" benchmarks/kernels_gpu.py --summarize "$OUT/kernels_gpu.json" \
            || echo "(could not summarise $OUT/kernels_gpu.json)"
    fi
} 2>&1 | tee "$OUT/summary.txt"
exit 0
