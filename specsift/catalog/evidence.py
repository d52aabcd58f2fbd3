"""Why an object is unusual: tail probabilities of its residuals and latents under the galaxy model.

The paper's score, ``-log p`` of the latents, only sees what the encoder puts into six numbers;
an anomaly the decoder cannot reproduce still lands among normal latents. ``OUTLIER_SCORE``
therefore asks five questions of every object, each answered by a tail probability under the
hypothesis "a normal galaxy of the training sample, observed with the stated noise":

``spectrum``
    chi-square of the whole reconstruction, with a per-pixel variance ``1/ivar + (f m)^2``: the
    noise plus the model's own uncertainty ``f`` (a fraction of the model flux per rest-frame
    wavelength, learned from the training split by :class:`ModelErrorFit`).
``window``
    the same chi-square in rest-frame windows of 100 A (every 50 A): a line that is split,
    shifted or missing, a break where none belongs.
``arm``
    the same chi-square per observed-frame segment (DESI's b, r, z arms): a mis-calibrated arm.
``missing``
    the share of a segment's pixels without data, against the training split: a dead arm
    leaves nothing to fit, so no residual can show it.
``latents``
    the latent density itself: the flow maps normal latents to a standard normal, so the
    squared radius of the mapped point is chi-square with S degrees of freedom.

Each chi-square test is then tempered by how heavy its null is among the training galaxies most
like the object (:meth:`Evidence.local_scale`): a kind of galaxy the model fits poorly is
compared with its own kind, not with the whole sample. Each probability is Bonferroni-corrected
within its family (the number of windows or
segments tested for that object); ``OUTLIER_SCORE = -log10`` of the smallest, and
``OUTLIER_REASON`` names the test that gave it. Chi-square tails use the Wilson-Hilferty cube
root (accurate to a few per cent in log p at 10 pixels, and finite far beyond 1e-300).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

__all__ = ["ModelErrorFit", "OutlierCalibration", "Evidence", "segments_for", "FAMILIES",
           "test_scales", "log_snr", "chi2_log10_sf", "LINES", "SCORE_FORMULA"]

FAMILIES = ("spectrum", "window", "arm", "missing", "latents")
SCORE_FORMULA = ("OUTLIER_SCORE = -log10 min over tests of (Bonferroni-corrected tail "
                 "probability, its log10 divided by the test's tempering learned from the "
                 "training split: for the chi2 tests, from the object's nearest training "
                 "galaxies in flow base coordinates and S/N) under the galaxy model's refined "
                 "fit: chi2 of the spectrum, of "
                 "100 A rest windows and of each arm with variance 1/ivar + (f m)^2 (f learned "
                 "from the training split), missing pixels per arm, and the flow's base radius "
                 "of the encoder's latents (chi2 with S dof)")

#: named rest-frame features, vacuum Angstrom, to label the windows in OUTLIER_REASON
LINES = {"[O II] 3727": 3728.5, "Ca K 3934": 3934.8, "Ca H 3969": 3969.6, "H-delta": 4102.9,
         "G band 4300": 4305.0, "H-gamma": 4341.7, "H-beta": 4862.7, "[O III] 4959": 4960.3,
         "[O III] 5007": 5008.2, "Mg b 5175": 5176.7, "Na D 5893": 5895.6, "[O I] 6300": 6302.0,
         "[N II] 6548": 6549.9, "H-alpha": 6564.6, "[N II] 6583": 6585.3,
         "[S II] 6716": 6718.3, "[S II] 6731": 6732.7, "Ca triplet 8542": 8544.4}

WINDOW_WIDTH = 100.0          # Angstrom, rest frame
SCALE_QUANTILE = 0.97         # training quantile at which each test is put on its nominal scale
REASON_SHARE = 0.5            # share of the top significance a more local test needs to be named
TAIL_FROM = 0.90              # reference quantile above which the fitted tail gives the p-value
NEIGHBOURS = 100              # training galaxies that stand for an object's own kind
LOCAL_QUANTILE = 0.9          # their quantile of each test that is put on the nominal scale
MIN_PIXELS = 10               # fewest valid pixels for a chi-square test
_LOG10 = np.log(10.0)

# DESI spectrograph arms (observed vacuum Angstrom, overlaps split at the middle)
_DESI_SEGMENTS = (("arm b", 3600.0, 5780.0), ("arm r", 5780.0, 7570.0), ("arm z", 7570.0, 9830.0))


def segments_for(wave: np.ndarray, survey: str = "") -> list[tuple[str, float, float]]:
    """Observed-frame segments for the ``arm`` and ``missing`` tests: DESI's three arms, or for
    any other survey three segments of equal log-wavelength width."""
    if survey.lower() == "desi":
        return list(_DESI_SEGMENTS)
    edges = np.geomspace(float(wave[0]), float(wave[-1]) * (1 + 1e-9), 4)
    return [(f"{name} third", float(lo), float(hi))
            for name, lo, hi in zip(("blue", "middle", "red"), edges[:-1], edges[1:])]


def chi2_log10_sf(chi2: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """log10 P(X >= chi2) for X ~ chi-square(dof) (Wilson-Hilferty); 0 where dof < 1."""
    chi2 = np.asarray(chi2, dtype=np.float64)
    dof = np.asarray(dof, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = 2.0 / (9.0 * np.maximum(dof, 1.0))
        z = (np.cbrt(np.maximum(chi2, 0.0) / np.maximum(dof, 1.0)) - (1.0 - k)) / np.sqrt(k)
        out = log_ndtr(-z) / _LOG10
    return np.where(dof >= 1, out, 0.0)


def _window_label(lo: float, hi: float) -> str:
    inside = [name for name, wave in LINES.items() if lo <= wave < hi]
    return f"rest {lo:.0f}-{hi:.0f} A" + (f" ({', '.join(inside)})" if inside else "")


@dataclass
class OutlierCalibration:
    """What the tests need to know about normal galaxies, learned once per galaxy model.

    Arguments:
        error_edges: (K+1,) rest-frame bin edges of the model-error curve, Angstrom.
        model_error: (K,) fractional model uncertainty ``f`` per bin.
        segments: observed-frame ``(name, low, high)`` segments.
        missing_reference: (N, n_segments) sorted missing-pixel shares of training objects.
        reference_scores: sorted ``OUTLIER_SCORE`` of the validation split (for p-values).
        refine_steps: Gauss-Newton steps of the per-object fit
            (:func:`~specsift.models.refine.refine_fit`) the residuals were computed with; the
            catalogue must fit the same way (0 in calibrations written before refinement).
        test_scale: (T,) divisor of each test's raw log10 tail probability, at least 1 (see
            :func:`test_scales`; None: no tempering).
        neighbour_features: (N, S + 1) where training galaxies lie for the local tempering:
            flow base coordinates and standardised log S/N (see :meth:`Evidence.features`;
            None in calibrations written before it: global tempering only).
        neighbour_significance: (N, T) their raw significances, ``-log10 p`` of every test.
        snr_standard: (2,) mean and standard deviation of log10 S/N over those galaxies.
    """

    error_edges: np.ndarray
    model_error: np.ndarray
    segments: list
    missing_reference: np.ndarray
    reference_scores: np.ndarray
    refine_steps: int = 0
    test_scale: np.ndarray | None = None
    neighbour_features: np.ndarray | None = None
    neighbour_significance: np.ndarray | None = None
    snr_standard: np.ndarray | None = None

    _OPTIONAL = ("test_scale", "neighbour_features", "neighbour_significance", "snr_standard")

    def tensors(self) -> dict[str, np.ndarray]:
        out = {"error_edges": self.error_edges, "model_error": self.model_error,
               "missing_reference": self.missing_reference,
               "reference_scores": self.reference_scores}
        out.update({name: getattr(self, name) for name in self._OPTIONAL
                    if getattr(self, name) is not None})
        return out

    def pvalue(self, score: np.ndarray) -> np.ndarray:
        """P-value of ``OUTLIER_SCORE`` under "a normal galaxy": conformal in the bulk, a
        Pareto tail above the reference's ``TAIL_FROM`` quantile.

        Below it, the p-value is (1 + validation objects scoring at least as high) / (n + 1).
        Why a tail model above it: n validation objects cannot give a p-value below 1/(n+1),
        and a survey needs far smaller ones for its q-values. The scores of normal galaxies
        have a heavy tail (the model fails badly for a few of them), so an exponential tail
        would be far too optimistic; the Pareto tail ``(1 - TAIL_FROM) (s / u)^-alpha``, with
        ``alpha`` the Hill estimate from the reference scores above ``u``, follows a power law.
        The anomalies a validation split holds sit in that tail and make it heavier: the
        p-values err on the safe side.
        """
        ref = self.reference_scores
        score = np.asarray(score, dtype=np.float64)
        higher = len(ref) - np.searchsorted(ref, score, side="left")
        p = (1.0 + higher) / (len(ref) + 1.0)
        joint = np.quantile(ref, TAIL_FROM) if len(ref) >= 100 else np.inf
        above = ref[ref > joint]
        if np.isfinite(joint) and joint > 0 and len(above) >= 10:
            alpha = 1.0 / np.mean(np.log(above / joint))
            with np.errstate(divide="ignore", invalid="ignore"):
                tail = (1 - TAIL_FROM) * (np.maximum(score, joint) / joint) ** -alpha
            p = np.where(score > joint, tail, p)
        return np.where(np.isfinite(score), p, np.nan)


def _segment_index(wave: np.ndarray, segments) -> np.ndarray:
    """(P,) segment of every observed pixel, -1 outside all segments."""
    index = np.full(len(wave), -1)
    for k, (_, lo, hi) in enumerate(segments):
        index[(wave >= lo) & (wave < hi)] = k
    return index


def _missing_share(weight: np.ndarray, seg_index: np.ndarray, n_seg: int,
                   usable: np.ndarray) -> np.ndarray:
    """(B, n_seg) share of each segment's usable pixels (not in the fixed mask) without data."""
    out = np.zeros((weight.shape[0], n_seg))
    for k in range(n_seg):
        cols = (seg_index == k) & usable
        if cols.any():
            out[:, k] = 1.0 - (weight[:, cols] > 0).mean(axis=1)
    return out


def log_snr(weight: np.ndarray, model: np.ndarray) -> np.ndarray:
    """(B,) log10 of the median S/N per pixel of the model over the valid pixels (-3 without
    any)."""
    valid = weight > 0
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # an object without valid pixels
        snr = np.nanmedian(np.where(valid, np.abs(model) * np.sqrt(np.where(valid, weight, 0)),
                                    np.nan), axis=1)
    return np.log10(np.maximum(np.nan_to_num(snr), 1e-3))


def test_scales(raw: np.ndarray, quantile: float = SCALE_QUANTILE) -> np.ndarray:
    """(T,) tempering of each test, from its (N, T) raw log10 tail probabilities on training
    galaxies: ``max(1, Q / -log10(1 - quantile))`` with ``Q`` the ``quantile`` of ``-raw``.

    Why: the chi-square null of a test holds only where the model error is well described by
    ``f``. Where the model fails for some normal galaxies (strong H-alpha + [N II] is the
    common case), the test's significances among normal galaxies are far heavier-tailed than
    nominal, and a normal galaxy would outrank the anomalies. Dividing by how much heavier the
    training galaxies make the test's upper quantile (the quantile leaves room for the ~1%
    anomalies a training split holds) puts every test back on the nominal scale there.
    """
    nominal = -np.log10(1.0 - quantile)
    observed = np.quantile(-np.asarray(raw, dtype=np.float64), quantile, axis=0)
    return np.maximum(observed / nominal, 1.0)


class ModelErrorFit:
    """Learn the model uncertainty ``f(lambda_rest)`` from the training split's residuals.

    Method of moments per 2 A rest-frame bin: ``f^2 = sum (r^2 - 1/ivar) m^2 / sum m^4`` over the
    valid pixels of normal-looking objects, clipped at 0. Why robust trimming: the training
    split holds anomalies too (about 1% in the mock), whose residuals would inflate ``f``; the
    objects with the largest chi-square within their S/N decile (``trim``, 3%) are left out, so
    bright galaxies are compared with bright galaxies. Per-object bin sums are kept for at most
    ``max_objects`` objects (float32, the first ones given: the caller draws the sample), which
    bounds the memory.
    """

    def __init__(self, wave_obs: np.ndarray, rest_range: tuple[float, float], segments,
                 usable: np.ndarray, bin_width: float = 2.0, max_objects: int = 6000,
                 trim: float = 0.03):
        self.wave_obs = np.asarray(wave_obs, dtype=np.float64)
        lo, hi = rest_range
        self.edges = np.arange(lo, hi + bin_width, bin_width)
        self.segments = segments
        self.seg_index = _segment_index(self.wave_obs, segments)
        self.usable = np.asarray(usable, bool)
        self.max_objects = max_objects
        self.trim = trim
        self._num, self._den, self._chi2, self._snr, self._missing = [], [], [], [], []

    def update(self, flux, weight, model, z, ok) -> None:
        """Add one batch: (B, P) flux, weight (ivar, 0 where invalid), model; (B,) z, ok."""
        keep = np.flatnonzero(np.asarray(ok, bool))[:max(self.max_objects - self.n_objects(), 0)]
        if not len(keep):
            return
        flux, weight, model = (np.asarray(a, dtype=np.float64)[keep] for a in (flux, weight, model))
        z = np.asarray(z, dtype=np.float64)[keep]
        valid = weight > 0
        r2 = np.square(flux - model)
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = np.where(valid, r2 - 1.0 / np.where(valid, weight, 1.0), 0.0)
        m2 = np.where(valid, np.square(model), 0.0)
        nb = len(self.edges) - 1
        bins = np.searchsorted(self.edges, self.wave_obs[None, :] / (1 + z[:, None])) - 1
        inside = valid & (bins >= 0) & (bins < nb)
        flat = (np.arange(len(keep))[:, None] * nb + bins)[inside]
        self._num.append(np.bincount(flat, (excess * m2)[inside], len(keep) * nb)
                         .reshape(len(keep), nb).astype(np.float32))
        self._den.append(np.bincount(flat, np.square(m2)[inside], len(keep) * nb)
                         .reshape(len(keep), nb).astype(np.float32))
        n_good = valid.sum(axis=1)
        self._chi2.append((r2 * weight).sum(axis=1) / np.maximum(n_good, 1))
        self._snr.append(log_snr(weight, model))
        self._missing.append(_missing_share(weight, self.seg_index, len(self.segments),
                                            self.usable))

    def n_objects(self) -> int:
        return sum(len(c) for c in self._chi2)

    def _normal_looking(self) -> np.ndarray:
        chi2, snr = np.concatenate(self._chi2), np.concatenate(self._snr)
        keep = np.ones(len(chi2), bool)
        deciles = np.quantile(snr, np.linspace(0, 1, 11))
        which = np.clip(np.searchsorted(deciles, snr, side="right") - 1, 0, 9)
        for d in range(10):
            members = which == d
            if members.sum() > 10:
                keep[members] = chi2[members] <= np.quantile(chi2[members], 1 - self.trim)
        return keep

    def calibration(self, reference_scores: np.ndarray | None = None,
                    refine_steps: int = 0) -> OutlierCalibration:
        """The fitted :class:`OutlierCalibration` (reference scores are added later)."""
        if not self.n_objects():
            raise ValueError("no usable training object to learn the model uncertainty from")
        keep = self._normal_looking()
        num = np.concatenate(self._num)[keep].sum(axis=0, dtype=np.float64)
        den = np.concatenate(self._den)[keep].sum(axis=0, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            f2 = np.where(den > 0, num / den, 0.0)
        f2 = np.convolve(np.clip(f2, 0.0, None), np.ones(3) / 3, mode="same")  # 6 A smoothing
        missing = np.sort(np.concatenate(self._missing)[keep], axis=0)
        return OutlierCalibration(self.edges, np.sqrt(f2), self.segments, missing,
                                  np.sort(np.asarray(reference_scores if reference_scores is not None
                                                     else [], dtype=np.float64)),
                                  refine_steps)


class Evidence:
    """Compute the five families of tests for batches of objects under one galaxy model."""

    def __init__(self, calibration: OutlierCalibration, wave_obs: np.ndarray,
                 usable: np.ndarray, rest_range: tuple[float, float]):
        self.cal = calibration
        self.wave_obs = np.asarray(wave_obs, dtype=np.float64)
        self.usable = np.asarray(usable, bool)
        self.seg_index = _segment_index(self.wave_obs, calibration.segments)
        lo, hi = rest_range
        step = WINDOW_WIDTH / 2
        self.bin_lo = np.floor(lo / step) * step
        self.n_bins = int(np.ceil((hi - self.bin_lo) / step)) + 1
        self.step = step
        self.labels = (["spectrum"]
                       + [_window_label(self.bin_lo + k * step, self.bin_lo + k * step + WINDOW_WIDTH)
                          for k in range(self.n_bins - 1)]
                       + [name for name, _, _ in calibration.segments]
                       + [f"missing data, {name}" for name, _, _ in calibration.segments]
                       + ["rare latents"])
        n_seg = len(calibration.segments)
        # how local each test is: the reason names the most local of the tests that decide
        self.locality = np.array([0] + [3] * (self.n_bins - 1) + [2] * n_seg + [2] * n_seg + [1])
        # the chi-square tests, whose null depends on the kind of galaxy (the model fits some
        # kinds worse); the missing-data and latent tests have one null for all
        self.chi2_test = np.arange(len(self.labels)) < 1 + (self.n_bins - 1) + n_seg

    def variance(self, weight: np.ndarray, model: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(B, P) total variance ``1/ivar + (f m)^2`` (inf where there is no data)."""
        edges, f = self.cal.error_edges, self.cal.model_error
        bins = np.clip(np.searchsorted(edges, self.wave_obs[None, :] / (1 + z[:, None])) - 1,
                       0, len(f) - 1)
        with np.errstate(divide="ignore"):
            noise = np.where(weight > 0, 1.0 / np.where(weight > 0, weight, 1.0), np.inf)
        return noise + np.square(f[bins] * model)

    def features(self, latent_base: np.ndarray, log_snr: np.ndarray) -> np.ndarray:
        """(B, S + 1) where objects lie for the local tempering: flow base coordinates (unit
        scale by construction) and log10 S/N standardised by the calibration's
        ``snr_standard``.

        Why S/N beside the latents: the latents do not know how bright an object is, and the
        same model error weighs more against the noise of a brighter galaxy."""
        mean, std = self.cal.snr_standard
        return np.column_stack([np.asarray(latent_base, dtype=np.float64),
                                (np.asarray(log_snr, dtype=np.float64) - mean) / std])

    def local_scale(self, latent_base: np.ndarray, weight: np.ndarray,
                    model: np.ndarray) -> np.ndarray:
        """(B, T) tempering of every test for each object.

        For a chi-square test: how much heavier than nominal the test is among the object's
        ``NEIGHBOURS`` nearest training galaxies (their ``LOCAL_QUANTILE`` of ``-log10 p``
        over its nominal value, at least 1), and at least the global :func:`test_scales`.
        Why: the model fits some kinds of normal galaxy (bright ones with strong H-alpha and
        [N II], say) far worse than others, so one tempering for all either leaves those on top
        of the ranking or blunts the tests for everyone else. An object's neighbours include
        the odd anomaly of the training split; a quantile below the top keeps a few of them
        from setting the scale. Objects without a calibration of neighbours get the global
        tempering alone; an object at distance 0 (itself, when scoring the training split) is
        not its own neighbour.
        """
        n, t = len(latent_base), len(self.labels)
        scale = np.ones((n, t)) if self.cal.test_scale is None or len(self.cal.test_scale) != t \
            else np.repeat(self.cal.test_scale[None, :], n, axis=0)
        ref, sig = self.cal.neighbour_features, self.cal.neighbour_significance
        if ref is None or sig is None or sig.shape[1] != t or not n:
            return scale
        features = self.features(latent_base, log_snr(weight, model))
        k = min(NEIGHBOURS, len(ref) - 1)
        distance = (np.square(features).sum(1)[:, None] - 2 * features @ ref.T
                    + np.square(ref).sum(1)[None, :])
        distance[distance < 1e-9] = np.inf
        nearest = np.argpartition(distance, k, axis=1)[:, :k]
        order = int(round(LOCAL_QUANTILE * (k - 1)))
        local = np.partition(sig[nearest][:, :, self.chi2_test], order, axis=1)[:, order, :]
        nominal = -np.log10(1.0 - LOCAL_QUANTILE)
        scale[:, self.chi2_test] = np.maximum(scale[:, self.chi2_test], local / nominal)
        return scale

    def log10_tests(self, flux, weight, model, z, latent_base) -> np.ndarray:
        """(B, T) Bonferroni-corrected log10 tail probabilities, one column per test label, each
        tempered by :meth:`local_scale` (see :meth:`raw_log10_tests`); ``latent_base`` (B, S)
        are the latents mapped to the flow's standard-normal base."""
        raw, correction = self.raw_log10_tests(flux, weight, model, z, latent_base)
        scale = self.local_scale(latent_base, weight, model)
        return np.minimum(raw / scale + correction, 0.0)

    def raw_log10_tests(self, flux, weight, model, z, latent_base):
        """``(raw, correction)``: (B, T) log10 tail probabilities of the tests as if their null
        were exact, and (B, T) the log10 Bonferroni factor of each (tests of its family)."""
        flux, weight, model = (np.asarray(a, dtype=np.float64) for a in (flux, weight, model))
        z = np.asarray(z, dtype=np.float64)
        b = len(z)
        valid = weight > 0
        t = np.where(valid, np.square(flux - model) / self.variance(weight, model, z), 0.0)
        raw = [chi2_log10_sf(t.sum(axis=1), valid.sum(axis=1))[:, None]]
        correction = [np.zeros((b, 1))]

        nb = self.n_bins
        half = np.floor((self.wave_obs[None, :] / (1 + z[:, None]) - self.bin_lo) / self.step)
        half = np.clip(half, 0, nb - 1).astype(np.int64)
        flat = (np.arange(b)[:, None] * nb + half)[valid]
        chi_bins = np.bincount(flat, t[valid], b * nb).reshape(b, nb)
        n_bins = np.bincount(flat, None, b * nb).reshape(b, nb)
        chi_win, n_win = chi_bins[:, :-1] + chi_bins[:, 1:], n_bins[:, :-1] + n_bins[:, 1:]
        tested = n_win >= MIN_PIXELS
        raw.append(np.where(tested, chi2_log10_sf(chi_win, n_win), 0.0))
        correction.append(np.repeat(np.log10(np.maximum(tested.sum(axis=1), 1))[:, None],
                                    nb - 1, axis=1))

        n_seg = len(self.cal.segments)
        seg_chi = np.zeros((b, n_seg))
        seg_n = np.zeros((b, n_seg))
        for k in range(n_seg):
            cols = self.seg_index == k
            seg_chi[:, k] = t[:, cols].sum(axis=1)
            seg_n[:, k] = valid[:, cols].sum(axis=1)
        seg_tested = seg_n >= MIN_PIXELS
        raw.append(np.where(seg_tested, chi2_log10_sf(seg_chi, seg_n), 0.0))
        correction.append(np.full((b, n_seg), np.log10(max(n_seg, 1))))

        share = _missing_share(weight, self.seg_index, n_seg, self.usable)
        ref = self.cal.missing_reference
        at_least = len(ref) - np.stack([np.searchsorted(ref[:, k], share[:, k], side="left")
                                        for k in range(n_seg)], axis=1)
        raw.append(np.log10((1.0 + at_least) / (len(ref) + 1.0)))
        correction.append(np.full((b, n_seg), np.log10(max(n_seg, 1))))

        latent_base = np.asarray(latent_base, dtype=np.float64)
        raw.append(chi2_log10_sf(np.square(latent_base).sum(axis=1),
                                 np.full(b, float(latent_base.shape[1])))[:, None])
        correction.append(np.zeros((b, 1)))
        return np.concatenate(raw, axis=1), np.concatenate(correction, axis=1)

    def score(self, tests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(OUTLIER_SCORE, index of the test named as the reason)`` from :meth:`log10_tests`.

        The score is the largest significance. The reason is the most local test (a window
        before an arm before the whole spectrum) with at least ``REASON_SHARE`` of it. Why: a
        missing line is so significant that its arm and the whole spectrum fail too, and the
        window says more to the scientist.
        """
        finite = np.where(np.isfinite(tests), tests, 0.0)
        score = -finite.min(axis=1)
        deciding = -finite >= REASON_SHARE * score[:, None]
        rank = np.where(deciding, self.locality[None, :] * (score[:, None] + 1) - finite, -np.inf)
        return score, np.argmax(rank, axis=1)
