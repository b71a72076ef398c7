"""CartPole (Barto, Sutton & Anderson 1983) in numpy, vectorised over episodes: the DQN's control task.

The dynamics and termination rules are those of gymnasium's CartPole-v1 (Euler step, tau 0.02 s, 12 deg /
2.4 m limits); episodes are capped at `max_steps`. Observations are the state divided by `OBS_SCALE` so
that all four inputs share one fixed-point input quantizer's range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

GRAVITY, MASS_CART, MASS_POLE, HALF_LENGTH, FORCE, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
THETA_LIMIT, X_LIMIT = 12 * 2 * np.pi / 360, 2.4
OBS_SCALE = np.array([X_LIMIT, 3.0, THETA_LIMIT, 3.0], dtype=np.float32)


class CartPole:
    """n independent carts; `step(actions)` returns (observations, rewards, dones) for the n carts."""

    def __init__(self, n: int = 1, seed: int = 0, max_steps: int = 200):
        self.rng = np.random.default_rng(seed)
        self.n, self.max_steps = n, max_steps
        self.reset()

    def reset(self, mask: np.ndarray | None = None) -> np.ndarray:
        if mask is None:
            self.state = self.rng.uniform(-0.05, 0.05, size=(self.n, 4))
            self.t = np.zeros(self.n, dtype=np.int64)
        else:
            self.state[mask] = self.rng.uniform(-0.05, 0.05, size=(int(mask.sum()), 4))
            self.t[mask] = 0
        return self.obs()

    def obs(self) -> np.ndarray:
        return (self.state / OBS_SCALE).astype(np.float32)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, x_dot, theta, theta_dot = self.state.T
        force = np.where(actions == 1, FORCE, -FORCE)
        cos, sin = np.cos(theta), np.sin(theta)
        total_mass, pole_ml = MASS_CART + MASS_POLE, MASS_POLE * HALF_LENGTH
        temp = (force + pole_ml * theta_dot**2 * sin) / total_mass
        theta_acc = (GRAVITY * sin - cos * temp) / (
            HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * cos**2 / total_mass)
        )
        x_acc = temp - pole_ml * theta_acc * cos / total_mass
        self.state = np.stack(
            [x + TAU * x_dot, x_dot + TAU * x_acc, theta + TAU * theta_dot, theta_dot + TAU * theta_acc],
            axis=1,
        )
        self.t += 1
        failed = (np.abs(self.state[:, 0]) > X_LIMIT) | (np.abs(self.state[:, 2]) > THETA_LIMIT)
        done = failed | (self.t >= self.max_steps)
        return self.obs(), np.ones(self.n, dtype=np.float32), done


def greedy_reward(
    q_values: Callable[[np.ndarray], np.ndarray], episodes: int = 20, seed: int = 1000, max_steps: int = 200
) -> float:
    """Mean episode reward of the greedy policy argmax_a Q(s, a), episodes run side by side.

    `q_values` maps a batch of observations (n, 4) to Q-values (n, 2); any engine's predict works
    (torch, onnxruntime, hls4ml csim), so the deployed network's reward can be measured directly.
    """
    env = CartPole(episodes, seed, max_steps)
    obs = env.obs()
    alive = np.ones(episodes, dtype=bool)
    total = np.zeros(episodes)
    while alive.any():
        actions = np.asarray(q_values(obs)).reshape(episodes, -1).argmax(1)
        obs, reward, done = env.step(actions)
        total += reward * alive
        alive &= ~done
    return float(total.mean())


def collect_states(n_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """States met by a noisy linear balancing controller (a stand-in for the states a good policy
    visits), with the controller's action: the inputs every stage of a deployed Q-net is compared on."""
    rng = np.random.default_rng(seed)
    env = CartPole(32, seed, max_steps=200)
    xs, ys = [], []
    obs = env.obs()
    while sum(len(x) for x in xs) < n_samples:
        s = env.state
        action = ((s[:, 2] + 0.3 * s[:, 3] + 0.05 * s[:, 1] + 0.01 * s[:, 0]) > 0).astype(np.int64)
        xs.append(obs)
        ys.append(action)
        explore = rng.random(env.n) < 0.2
        obs, _, done = env.step(np.where(explore, rng.integers(0, 2, env.n), action))
        if done.any():
            obs = env.reset(done)
    return np.concatenate(xs)[:n_samples], np.concatenate(ys)[:n_samples]
