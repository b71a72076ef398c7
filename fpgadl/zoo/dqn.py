"""Deep Q-network (Mnih et al. 2015) for CartPole: the deployed network is the Q-net alone.

The Q-net is any zoo model mapping an observation to one Q-value per action (recipes use `mlp`).
Training: epsilon-greedy experience collected in `fpgadl.ml.cartpole.CartPole`, a replay buffer, a
target network refreshed every `target_every` steps, Huber loss on the one-step TD target. After each
"epoch" (`steps_per_epoch` environment steps) the greedy policy's mean reward on fixed evaluation
episodes is the validation score; the best Q-net is kept.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from fpgadl.ml.cartpole import CartPole, greedy_reward
from fpgadl.ml.datasets import Dataset
from fpgadl.ml.recipes import Recipe
from fpgadl.ml.train import (
    EarlyStopping,
    Progress,
    TrainResult,
    as_tensor,
    register_trainer,
    seed_everything,
    torch_predict,
)

DEFAULTS = {
    "steps_per_epoch": 2000,
    "gamma": 0.99,
    "buffer": 20000,
    "warmup": 500,
    "target_every": 500,
    "eps_start": 1.0,
    "eps_end": 0.05,
    "eps_decay_steps": 10000,
    "eval_episodes": 10,
    "max_steps": 200,
}


@register_trainer("dqn")
def train_dqn(model: torch.nn.Module, data: Dataset, recipe: Recipe, progress: Progress | None = None) -> TrainResult:
    cfg = recipe.train
    unknown = set(cfg.params) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"train.params: unknown keys {sorted(unknown)}; valid: {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **cfg.params}
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    target = copy.deepcopy(model).eval()
    env = CartPole(1, cfg.seed, p["max_steps"])
    n_buf = int(p["buffer"])
    buf_s = np.zeros((n_buf, 4), np.float32)
    buf_a = np.zeros(n_buf, np.int64)
    buf_r = np.zeros(n_buf, np.float32)
    buf_s2 = np.zeros((n_buf, 4), np.float32)
    buf_d = np.zeros(n_buf, np.float32)
    obs, step, filled = env.obs(), 0, 0
    stopper = EarlyStopping(model, cfg, progress)

    def evaluate() -> float:
        return greedy_reward(lambda s: torch_predict(model, s), p["eval_episodes"], 10_000 + cfg.seed, p["max_steps"])

    for epoch in range(1, cfg.epochs + 1):
        losses = []
        for _ in range(int(p["steps_per_epoch"])):
            eps = p["eps_end"] + (p["eps_start"] - p["eps_end"]) * max(0.0, 1 - step / p["eps_decay_steps"])
            if rng.random() < eps:
                action = int(rng.integers(0, 2))
            else:
                model.eval()
                with torch.no_grad():
                    action = int(as_tensor(model(torch.from_numpy(obs))).argmax(1)[0])
            obs2, reward, done = env.step(np.array([action]))
            # Time-limit ends are not failures: bootstrap through them.
            failed = bool(done[0]) and env.t[0] < p["max_steps"]
            i = step % n_buf
            buf_s[i], buf_a[i], buf_r[i], buf_s2[i], buf_d[i] = (
                obs[0],
                action,
                reward[0],
                obs2[0],
                float(failed),
            )
            filled = min(filled + 1, n_buf)
            obs = env.reset() if done[0] else obs2
            step += 1
            if filled >= p["warmup"]:
                idx = rng.integers(0, filled, cfg.batch_size)
                model.train()
                with torch.no_grad():
                    q_next = as_tensor(target(torch.from_numpy(buf_s2[idx]))).max(1).values
                    y = torch.from_numpy(buf_r[idx]) + p["gamma"] * q_next * (1 - torch.from_numpy(buf_d[idx]))
                q = as_tensor(model(torch.from_numpy(buf_s[idx])))
                q = q.gather(1, torch.from_numpy(buf_a[idx])[:, None])[:, 0]
                loss = torch.nn.functional.smooth_l1_loss(q, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss))
            if step % p["target_every"] == 0:
                target.load_state_dict(model.state_dict())
        val = evaluate()
        if stopper.step(epoch, {"loss": float(np.mean(losses)) if losses else float("nan"), "val": val}):
            break
    return stopper.finish()
