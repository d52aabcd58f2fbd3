"""Batched, differentiable linear interpolation: the redshift step of the decoder.

All objects share one sorted grid ``xp``, so one ``searchsorted`` over a (B, Q) query finds
every bracket at once and two ``gather`` calls do the interpolation: no Python loop over
objects, and gradients flow to the interpolated values (the model), which is all training needs.
"""

from __future__ import annotations

import torch

__all__ = ["interp", "redshift_to_observed"]


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
    hi = torch.searchsorted(xp, x.contiguous()).clamp(1, xp.shape[0] - 1)
    lo = hi - 1
    x0, x1 = xp[lo], xp[hi]
    t = (x - x0) / (x1 - x0)
    y0 = torch.gather(fp, 1, lo)
    y1 = torch.gather(fp, 1, hi)
    inside = (x >= xp[0]) & (x <= xp[-1])
    values = torch.where(inside, y0 + t.to(fp.dtype) * (y1 - y0), torch.zeros((), dtype=fp.dtype,
                                                                              device=fp.device))
    return values, inside


def redshift_to_observed(wave_rest: torch.Tensor, model_rest: torch.Tensor, wave_obs: torch.Tensor,
                         z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move rest-frame models to redshift ``z`` and sample them on the observed grid.

    An observed pixel at ``lambda`` sees rest wavelength ``lambda / (1 + z)``; pixels whose rest
    wavelength lies outside the model grid get value 0 and ``covered`` False, so the caller
    gives them zero weight.

    Arguments:
        wave_rest: (R,) rest-frame grid. model_rest: (B, R). wave_obs: (P,). z: (B,).

    Returns:
        ``(model_obs, covered)``, both (B, P).
    """
    query = wave_obs.to(wave_rest.dtype)[None, :] / (1 + z.to(wave_rest.dtype))[:, None]
    return interp(query, wave_rest, model_rest)
