"""Batched, differentiable linear interpolation: the redshift step of the decoder.

All objects share one sorted grid ``xp``, so the brackets of a whole (B, Q) query are found at once
(arithmetically when the grid is uniform, as the rest-frame grid always is, else with one
``searchsorted``) and two ``gather`` calls interpolate: no Python loop over objects, and gradients
flow to the interpolated values (the model), which is all training needs.
"""

from __future__ import annotations

import torch

__all__ = ["interp", "interp_uniform", "redshift_to_observed", "rest_positions"]


def _gather_linear(fp: torch.Tensor, lo: torch.Tensor, t: torch.Tensor, inside: torch.Tensor):
    """Values between columns ``lo`` and ``lo + 1`` of ``fp`` at fraction ``t``; 0 outside."""
    y0 = torch.gather(fp, 1, lo)
    y1 = torch.gather(fp, 1, lo + 1)
    values = y0 + t.to(fp.dtype) * (y1 - y0)
    return torch.where(inside, values, torch.zeros((), dtype=fp.dtype, device=fp.device)), inside


def interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear interpolation of rows of ``fp`` (sampled on the shared grid ``xp``) at ``x``.

    Arguments:
        x: (B, Q) query coordinates, one row per object.
        xp: (N,) increasing sample coordinates shared by every object.
        fp: (B, N) sampled values.

    Returns:
        ``(values, inside)``: (B, Q) interpolated values, exactly 0 where the query falls outside
        ``[xp[0], xp[-1]]`` (no extrapolation), and the (B, Q) bool mask of inside queries.

    Example:
        >>> xp = torch.tensor([0.0, 1.0, 2.0])
        >>> v, inside = interp(torch.tensor([[0.5, 3.0]]), xp, torch.tensor([[0.0, 2.0, 4.0]]))
        >>> v.tolist(), inside.tolist()
        ([[1.0, 0.0]], [[True, False]])
    """
    xp = xp.to(x.dtype)
    lo = (torch.searchsorted(xp, x.contiguous()) - 1).clamp(0, xp.shape[0] - 2)
    x0, x1 = xp[lo], xp[lo + 1]
    inside = (x >= xp[0]) & (x <= xp[-1])
    return _gather_linear(fp, lo, (x - x0) / (x1 - x0), inside)


def interp_uniform(position: torch.Tensor, fp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`interp` for a uniform grid, given fractional pixel ``position`` (0 = first pixel).

    Why: on a uniform grid the bracket is ``floor(position)``, which is several times faster
    than a binary search over a million queries per batch.
    """
    n = fp.shape[1]
    inside = (position >= 0) & (position <= n - 1)
    lo = position.floor().clamp(0, n - 2)
    return _gather_linear(fp, lo.long(), position - lo, inside)


def redshift_to_observed(wave_rest: torch.Tensor, model_rest: torch.Tensor, wave_obs: torch.Tensor,
                         z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move rest-frame models to redshift ``z`` and sample them on the observed grid.

    An observed pixel at ``lambda`` sees rest wavelength ``lambda / (1 + z)``; pixels whose rest
    wavelength lies outside the model grid get value 0 and ``covered`` False, so the caller
    gives them zero weight.

    Arguments:
        wave_rest: (R,) uniform rest-frame grid. model_rest: (B, R). wave_obs: (P,). z: (B,).

    Returns:
        ``(model_obs, covered)``, both (B, P).
    """
    return interp_uniform(rest_positions(wave_rest, wave_obs, z), model_rest)


def rest_positions(wave_rest: torch.Tensor, wave_obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """(B, P) fractional pixel of the uniform rest grid that each observed pixel sees at ``z``.

    Float64: float32 would blur 1e-3 of a pixel.
    """
    wave_rest = wave_rest.double()
    step = (wave_rest[-1] - wave_rest[0]) / (wave_rest.shape[0] - 1)
    return (wave_obs.double()[None, :] / (1 + z.double())[:, None] - wave_rest[0]) / step
