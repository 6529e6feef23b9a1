#!/bin/bash
# On the device machine (see DEVELOPERS.md): install the carried wheels (.whl/), run the GPU tests,
# then benchmarks/gpu_speed.py; logs and JSON go under $OUT. TESTS, BENCH_ARGS and the timeouts can
# be set in the environment (BENCH_ARGS="--skip parity" for a quick run).
cd "$(dirname "$0")/.."
T0=$(date +%s)
mkdir -p /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -3
tar xJf .whl/llvmlite-0.50.0-site.tar.xz -C /tmp/site
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
echo "setup $(( $(date +%s) - T0 )) s"
python3 -c "import numpy, numba, llvmlite, cupy, scipy, skimage; print('numpy', numpy.__version__, 'numba', numba.__version__, 'llvmlite', llvmlite.__version__, 'cupy', cupy.__version__, 'scipy', scipy.__version__, 'gpus', cupy.cuda.runtime.getDeviceCount())" 2>&1 | tee $OUT/env.log
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())" 2>&1 | tail -1 | tee -a $OUT/env.log
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,clocks.mem --format=csv 2>&1 | tee -a $OUT/env.log
nproc | tee -a $OUT/env.log
timeout ${TEST_TIMEOUT:-260} python3 -m pytest -q -p no:cacheprovider -rs ${TESTS:-tests/test_gpu.py tests/test_kernels.py} 2>&1 | tee $OUT/tests.log | tail -40
echo "tests done at $(( $(date +%s) - T0 )) s"
timeout ${BENCH_TIMEOUT:-280} python3 benchmarks/gpu_speed.py $( [ -f benchmarks/results/parity_params.jsonl ] && echo --params benchmarks/results/parity_params.jsonl ) --out $OUT/gpu_speed.json ${BENCH_ARGS:-} 2>&1 | tee $OUT/bench.log | tail -30
echo "all done at $(( $(date +%s) - T0 )) s"
