"""SPARS speed: environment steps per second with 1, 4 and 16 environments, and the time to
segment one new scan with trained agents.

Usage::

    python benchmarks/spars_speed.py [--run RUN_DIR] [--envs 1 4 16] [--steps 256] [--repeats 3]
                                     [--device cpu] [--out benchmarks/results/spars_speed.json]

For each number of environments N, over the config's volumes and window:

- ``rollout``: steps of the self-play game alone, as PPO's rollouts make them: the learner's moves
  from the policy (one batched forward), the competitor's (one batched forward of its frozen
  copy), every window scored in one classifier call, maps and resets; N environment steps per
  call;
- ``learn``: ``PPO.learn`` over ``--steps`` x N environment steps, rollouts and updates together.

Each is timed ``--repeats`` times after a warm-up and the median is printed, in environment
steps per second. With ``--run`` (a ``tumorsynth spars train`` folder) the trained classifier and
agents are used, and the time to segment a real CT of ``../shared/data`` (``example_ct.nii.gz``,
3 mm, its liver mask; read, resampled, episodes, resampled back) is measured too; without it, an
untrained classifier and policy of the tiny config (the same cost per step; episodes end at other
times).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from tumorsynth.methods.spars.agents import build_envs, train_agents
from tumorsynth.methods.spars.classifier import WindowScorer, build_classifier, classifier_spec
from tumorsynth.methods.spars.config import load_spars_config
from tumorsynth.methods.spars.volumes import load_hosts, synthetic_volumes

DATA = Path(
    os.environ.get("TUMORSYNTH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def rollout_rate(cfg, volumes, scorer, policy, n_envs: int, steps: int) -> float:
    """Environment steps per second of the game alone (no PPO update)."""
    from dataclasses import replace

    wrapper = build_envs(volumes, replace(cfg, n_envs=n_envs), scorer, seed=0)
    wrapper.set_competitor(policy)
    obs = wrapper.reset()
    for _ in range(5):  # warm-up
        obs, *_ = wrapper.step(policy.predict(obs)[0])
    start = time.perf_counter()
    for _ in range(steps):
        with torch.no_grad():
            actions, _ = policy.predict(obs)
        obs, *_ = wrapper.step(actions)
    return steps * n_envs / (time.perf_counter() - start)


def learn_rate(cfg, volumes, scorer, n_envs: int, steps: int) -> float:
    """Environment steps per second of ``PPO.learn`` (rollouts and updates)."""
    from dataclasses import replace

    run = replace(cfg, n_envs=n_envs, ppo_steps=steps * n_envs)
    start = time.perf_counter()
    train_agents(run, scorer, volumes, progress=False)
    return steps * n_envs / (time.perf_counter() - start)


def segment_seconds(run_dir: Path, repeats: int) -> list[float]:
    """Seconds to segment example_ct.nii.gz with the run's agents (read to labels)."""
    from tumorsynth.io.case import read_case
    from tumorsynth.methods.spars.model import load_run
    from tumorsynth.methods.spars.segment import segment_volume

    ct = DATA / "totalsegmentator_example" / "example_ct.nii.gz"
    mask = DATA / "totalsegmentator_example" / "example_ct_liver_mask.nii.gz"
    model = load_run(run_dir)
    times = []
    for k in range(repeats + 1):
        start = time.perf_counter()
        case = read_case(ct, mask).case
        segment_volume(model, np.asarray(case.image), np.asarray(case.organ), case.spacing_mm,
                       name=ct.name, seed=k)  # fmt: skip
        times.append(time.perf_counter() - start)
    return times[1:]  # the first warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a tumorsynth spars train folder")
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--steps", type=int, default=256, help="vectorised steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/spars_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.run:
        from tumorsynth.methods.spars.model import load_run

        model = load_run(args.run, args.device)
        cfg, scorer, policy = model.config, model.scorer, model.policy
    else:
        cfg = load_spars_config(None, {"device": args.device})
        scorer = WindowScorer(build_classifier(classifier_spec(cfg)), args.device)
        policy = None
    volumes = synthetic_volumes(cfg, load_hosts(cfg), cfg.n_volumes, seed=0)
    if policy is None:
        from dataclasses import replace

        policy = train_agents(replace(cfg, ppo_steps=cfg.ppo_n_steps * cfg.n_envs), scorer,
                              volumes, progress=False).model.policy  # fmt: skip
    report = {"device": args.device, "threads": args.threads, "cpu": platform.processor(),
              "window_vox": list(cfg.window_vox), "obs_scores": cfg.obs_scores, "rates": {}}  # fmt: skip
    for n in args.envs:
        rollout = [rollout_rate(cfg, volumes, scorer, policy, n, args.steps)
                   for _ in range(args.repeats)]  # fmt: skip
        learn = [learn_rate(cfg, volumes, scorer, n, args.steps) for _ in range(args.repeats)]
        report["rates"][n] = {
            "rollout": statistics.median(rollout),
            "learn": statistics.median(learn),
        }
        print(f"{n:>3} envs: rollout {statistics.median(rollout):7.0f} steps/s, "
              f"learn {statistics.median(learn):7.0f} steps/s (median of {args.repeats})")  # fmt: skip
    if args.run:
        times = segment_seconds(args.run, args.repeats)
        report["segment_s"] = times
        print(f"segment example_ct.nii.gz: median {statistics.median(times):.2f} s ({times})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
