"""Total Sobol indices of a function of k factors in [0, 1], as CRAFT estimates concept importance:
a Saltelli-style design of quasi-Monte-Carlo points and Jansen's estimator (Jansen 1999; Saltelli
et al. 2010).

The design is n points A and n points B (the two halves of a 2k-dimensional scrambled Sobol'
sequence) and, for each factor i, A with its column i taken from B. Jansen's estimator of factor i's
total index is E[(f(A) - f(A_B^i))^2] / (2 Var f): the share of the output's variance that
involves factor i, alone or with others.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ParameterError


def sobol_masks(k: int, n: int, seed: int = 0) -> np.ndarray:
    """The design for k factors: A (n x k), B (n x k), then A_B^1 ... A_B^k, stacked as (n * (k + 2), k).

    Raises:
        ParameterError: k or n below 1.
    """
    if k < 1 or n < 1:
        raise ParameterError(f"a Sobol design needs k >= 1 factors and n >= 1 points, not k={k}, n={n}")
    from scipy.stats import qmc

    with warnings.catch_warnings():
        # scipy warns where n is not a power of 2 (the sequence's balance is then not exact); the
        # estimator stays unbiased, and the number of masks is the caller's choice.
        warnings.simplefilter("ignore", UserWarning)
        ab = qmc.Sobol(2 * k, scramble=True, rng=seed).random(n)
    a, b = ab[:, :k], ab[:, k:]
    replicas = np.repeat(a[None], k, axis=0)  # (k, n, k): replica i is A with column i from B
    replicas[np.arange(k), :, np.arange(k)] = b.T
    return np.concatenate([a, b, replicas.reshape(k * n, k)])


def total_indices(outputs: np.ndarray, n: int, k: int) -> np.ndarray:
    """Jansen's estimate of each factor's total Sobol index, (k,), from the function's ``outputs``
    on the design of :func:`sobol_masks` (in its order). Zero where the output does not vary.

    Raises:
        ParameterError: not n * (k + 2) outputs.
    """
    f = np.asarray(outputs, dtype=np.float64).ravel()
    if f.size != n * (k + 2):
        raise ParameterError(f"{f.size} outputs for a design of {n * (k + 2)} points (n={n}, k={k})")
    fa, fb, fc = f[:n], f[n : 2 * n], f[2 * n :].reshape(k, n)
    var = np.var(np.concatenate([fa, fb]), ddof=1) if 2 * n > 1 else 0.0
    if not var > 1e-12 * max(1.0, float(np.abs(f).max())) ** 2:
        return np.zeros(k)
    return ((fa[None] - fc) ** 2).mean(1) / (2 * var)
