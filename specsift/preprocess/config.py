"""Preprocessing declared as configuration: cuts, masks, normalisation and split in one object.

Every choice that shapes a store (which objects enter a sample, which pixels are masked, how
spectra are normalised, how objects are split) lives here rather than in code, so a user changes
it with ``specsift ingest --config FILE`` (TOML or JSON) and the store records exactly what was
used (:meth:`PreprocessConfig.to_dict` goes into its manifest).

Example:
    A TOML file that loosens the BGS redshift-confidence floor and masks more sky lines::

        [samples.bgs]
        DELTACHI2 = { gt = 25 }

        [masks]
        n_sky_lines = 200
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import SpecsiftInputError

__all__ = ["MaskConfig", "ExtinctionConfig", "NormalizeConfig", "SplitConfig", "PreprocessConfig",
           "default_config", "load_config", "BGS_ANY", "MWS_ANY"]

# DESI_TARGET bits (desitarget main-survey mask): any BGS target, any MWS target.
BGS_ANY = 1 << 60
MWS_ANY = 1 << 61

# Sample cuts per survey: column -> {operator: value}; see specsift.preprocess.selection.
# BGS: a confident Redrock galaxy redshift as in the BGS validation (Hahn et al. 2023, AJ 165,
# 253: ZWARN == 0 and DELTACHI2 > 40), in the 0 <= z <= 0.8 range of the BGS outlier sample
# (Liang et al. 2023).
_DESI_SAMPLES = {
    "bgs": {"DESI_TARGET": {"any_bits": BGS_ANY}, "SPECTYPE": {"eq": "GALAXY"},
            "ZWARN": {"eq": 0}, "Z": {"min": 0.0, "max": 0.8}, "DELTACHI2": {"gt": 40.0}},
    "mws": {"DESI_TARGET": {"any_bits": MWS_ANY}, "SPECTYPE": {"eq": "STAR"}, "ZWARN": {"eq": 0}},
    "all": {},
}


@dataclass
class MaskConfig:
    """Pixels to mask on top of the instrument mask and ivar <= 0.

    Arguments:
        sky_lines: line list (wavelength in nm, vacuum; intensity); empty = the list
            shipped with the package (``specsift/data/sky-lines.txt``, spender's, MIT).
        n_sky_lines: mask this many of the strongest lines that fall on the survey grid.
        sky_half_width: half width of each masked window, Angstrom (observed frame).
    """

    sky_lines: str = ""
    n_sky_lines: int = 100
    sky_half_width: float = 5.0


@dataclass
class ExtinctionConfig:
    """Milky-Way dust correction (see :mod:`specsift.preprocess.extinction`).

    Arguments:
        law: ``ccm89`` (Cardelli, Clayton & Mathis 1989) or ``none``.
        column: metadata column holding each object's E(B-V) (DESI fibermaps: ``EBV``).
        r_v: total-to-selective extinction ratio.
    """

    law: str = "none"
    column: str = "EBV"
    r_v: float = 3.1


@dataclass
class NormalizeConfig:
    """How a spectrum is scaled to a common level.

    Arguments:
        method: ``median_window`` (divide by the median good flux in a rest-frame window) or
            ``none`` (already normalised, e.g. APOGEE pseudo-continuum spectra).
        window: rest-frame window in Angstrom.
        min_pixels: fewest good pixels in the window for a trustworthy median.
    """

    method: str = "median_window"
    window: tuple[float, float] = (5300.0, 5850.0)
    min_pixels: int = 10


@dataclass
class SplitConfig:
    """Train/validation/test fractions, assigned from a hash of the object id.

    Arguments:
        fractions: (train, validation, test), summing to 1.
        salt: text prefixed to every id before hashing; change it to draw a different split.
    """

    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
    salt: str = ""


@dataclass
class PreprocessConfig:
    """Everything that decides what a store contains; see the module docstring for an example.

    Arguments:
        samples: sample name -> column cuts (``{"Z": {"min": 0, "max": 0.8}}``).
        masks: see :class:`MaskConfig`.
        extinction: see :class:`ExtinctionConfig`.
        normalize: see :class:`NormalizeConfig`.
        split: see :class:`SplitConfig`.
    """

    samples: dict = field(default_factory=lambda: {"all": {}})
    masks: MaskConfig = field(default_factory=MaskConfig)
    extinction: ExtinctionConfig = field(default_factory=ExtinctionConfig)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    split: SplitConfig = field(default_factory=SplitConfig)

    def __post_init__(self):
        self.normalize.window = tuple(float(w) for w in self.normalize.window)
        self.split.fractions = tuple(float(f) for f in self.split.fractions)
        if self.normalize.method not in ("median_window", "none"):
            raise SpecsiftInputError(f"normalize.method must be 'median_window' or 'none', "
                                     f"not {self.normalize.method!r}")
        lo, hi = self.normalize.window
        if not 0 < lo < hi:
            raise SpecsiftInputError(f"normalize.window must be (low, high) with 0 < low < high, "
                                     f"not {self.normalize.window}")
        fr = self.split.fractions
        if len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1) > 1e-9:
            raise SpecsiftInputError(f"split.fractions must be three non-negative numbers summing "
                                     f"to 1, not {fr}")
        if self.extinction.law not in ("ccm89", "none"):
            raise SpecsiftInputError(f"extinction.law must be 'ccm89' or 'none', "
                                     f"not {self.extinction.law!r}")
        if self.masks.n_sky_lines < 0 or self.masks.sky_half_width < 0:
            raise SpecsiftInputError("masks.n_sky_lines and masks.sky_half_width must be >= 0")

    def cuts(self, sample: str) -> dict:
        """The column cuts of ``sample``; an unknown name lists the known ones."""
        if sample not in self.samples:
            raise SpecsiftInputError(f"unknown sample {sample!r}; this configuration defines "
                                     f"{', '.join(sorted(self.samples))}")
        return self.samples[sample]

    def to_dict(self) -> dict:
        """Plain JSON-able form (recorded in the store manifest)."""
        return json.loads(json.dumps(asdict(self)))

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form: two stores with equal digests were cut alike."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: dict, base: "PreprocessConfig | None" = None) -> "PreprocessConfig":
        """Build a config from ``data`` layered over ``base`` (defaults); unknown keys are errors.

        Everything merges key by key, samples cut by cut: ``[samples.bgs] DELTACHI2 = {gt = 25}``
        changes one cut of ``bgs``, ``DELTACHI2 = {}`` removes it, a new name adds a sample.
        """
        merged = (base or cls()).to_dict()
        for key, value in data.items():
            if key not in merged:
                raise SpecsiftInputError(f"unknown configuration section {key!r}; expected one "
                                         f"of {', '.join(merged)}")
            if key == "samples":
                for name, cuts in value.items():
                    merged["samples"].setdefault(name, {}).update(cuts)
                continue
            known = {f.name for f in fields(_SECTIONS[key])}
            unknown = set(value) - known
            if unknown:
                raise SpecsiftInputError(f"unknown key(s) {', '.join(sorted(unknown))} in "
                                         f"[{key}]; expected {', '.join(sorted(known))}")
            merged[key].update(value)
        return cls(samples=merged["samples"],
                   **{name: _SECTIONS[name](**merged[name]) for name in _SECTIONS})


_SECTIONS = {"masks": MaskConfig, "extinction": ExtinctionConfig, "normalize": NormalizeConfig, "split": SplitConfig}


def default_config(survey: str) -> PreprocessConfig:
    """The defaults for one survey: DESI has BGS/MWS samples and the fibermap's E(B-V), APOGEE
    is already normalised."""
    survey = survey.lower()
    if survey == "desi":
        return PreprocessConfig(samples=json.loads(json.dumps(_DESI_SAMPLES)),
                                extinction=ExtinctionConfig(law="ccm89"))
    if survey == "apogee":
        return PreprocessConfig(normalize=NormalizeConfig(method="none"))
    return PreprocessConfig()


def load_config(path: str | Path | None, survey: str) -> PreprocessConfig:
    """Survey defaults, overridden by a TOML (``.toml``) or JSON file when ``path`` is given."""
    base = default_config(survey)
    if path is None:
        return base
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SpecsiftInputError(f"cannot read configuration: {exc.strerror}", path) from None
    try:
        data = tomllib.loads(text.decode()) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecsiftInputError(f"not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: "
                                 f"{exc}", path) from None
    try:
        return PreprocessConfig.from_dict(data, base)
    except SpecsiftInputError as exc:
        raise SpecsiftInputError(exc.problem, path) from None
    except TypeError as exc:
        raise SpecsiftInputError(f"bad configuration value: {exc}", path) from None
