#!/usr/bin/env bash
# The GPU check of issue 19 (part 8), as one script for a lent GPU machine whose Python has torch
# with CUDA but not mentor's other packages: they come as wheels in .whl/ (Python 3.12,
# manylinux x86_64: gymnasium, farama-notifications, pydantic, pydantic-core, annotated-types,
# typing-inspection, box2d, ale-py, stable-baselines3, MinAtar), with mentor from this checkout.
# Writes env.txt, atari.txt, tests.txt and solve.txt to $OUT. About 9 minutes at most.
#
# The wheels, fetched here once (the folder is ignored: echo /.whl/ >> .git/info/exclude):
#     python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#         --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#         --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#         gymnasium==1.4.0 farama-notifications==0.0.6 pydantic==2.14.4 pydantic-core==2.50.5 \
#         annotated-types==0.8.0 typing-inspection==0.4.5 box2d==2.3.10 ale-py==0.12.1 \
#         stable-baselines3==2.9.2 MinAtar==1.0.15
#
#     OUT=/tmp/gpu bash benchmarks/gpu_check.sh
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:$PWD"
fi
# The tests run the CLI as the `mentor` beside the interpreter.
bin=$(dirname "$(python3 -c 'import sys; print(sys.executable)')")
if [ ! -e "$bin/mentor" ]; then
    printf '#!%s\nimport sys\nfrom mentor.cli import main\nsys.exit(main())\n' "$bin/python3" \
        >"$bin/mentor" && chmod +x "$bin/mentor"
fi
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    nproc
    python3 -c 'import torch, gymnasium, mentor; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "gymnasium", gymnasium.__version__)'
} 2>&1 | tee "$OUT/env.txt"

timeout 130 python3 benchmarks/gpu.py --parts atari --atari-steps 16384 2>&1 | tee "$OUT/atari.txt"

# The learning tests and the training paths, on CUDA (device: auto picks it).
timeout 200 python3 -m pytest -q -p no:cacheprovider -n 12 -rfE --tb=short \
    --continue-on-collection-errors \
    tests/test_ppo.py tests/test_dqn.py tests/test_sac.py tests/test_td3.py tests/test_memory.py \
    tests/test_sde.py tests/test_atari.py tests/test_bc.py tests/test_dagger.py \
    tests/test_resume.py tests/test_checkpoint.py tests/test_deploy.py tests/test_box2d.py \
    tests/test_agent.py tests/test_transfer.py tests/test_gail.py >"$OUT/tests.txt" 2>&1
tail -40 "$OUT/tests.txt"

timeout 180 python3 benchmarks/gpu.py --parts solve --seeds 3 --parallel 6 2>&1 | tee "$OUT/solve.txt"
