"""Sibling search: which stars are chemically alike, in the units a scientist can judge.

A distance in the RSCA space means little by itself. Two yardsticks saved with the model
(:func:`.fitting.reference_distances`) give it meaning: the median sibling distance of the
training clusters (distances are reported in those units, so 1 is "as alike as a typical
pair of siblings") and the distances of random field pairs (the probability that two
unrelated stars are at least that close).

:class:`SiblingSearch` holds the embedded stars that pass the model's field cuts;
:func:`search_from_files` builds one from an allStar catalogue and spectra files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpecsiftInputError

__all__ = ["SiblingSearch", "search_from_files"]


@dataclass
class SiblingSearch:
    """Embedded stars (``ids``, ``embedding``) and the model's reference distances.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> search = SiblingSearch(np.array(["a", "b", "c"]), np.array([[0.0], [0.1], [5.0]]),
        ...                        1.0, np.sort(rng.uniform(0, 10, 1000)))
        >>> [str(row["APOGEE_ID"]) for row in search.siblings("a", top=2)]
        ['b', 'c']
    """

    ids: np.ndarray
    embedding: np.ndarray
    sibling_scale: float
    field_pair_distances: np.ndarray

    def __post_init__(self):
        self.ids = np.asarray(self.ids).astype(str)
        self._row = {star: i for i, star in enumerate(self.ids)}

    def chance(self, distance) -> np.ndarray:
        """Probability that a random pair of field stars is at most ``distance`` apart."""
        ref = self.field_pair_distances
        return np.searchsorted(ref, np.asarray(distance), "right") / len(ref)

    def _vector(self, star: str) -> np.ndarray:
        row = self._row.get(str(star).strip())
        if row is None:
            raise SpecsiftInputError(f"APOGEE_ID {star} is not among the {len(self.ids)} stars "
                                     "searched (those with a spectrum that pass the field cuts)")
        return self.embedding[row]

    def _row_of(self, other: str, distance: float) -> dict:
        return {"APOGEE_ID": other, "DISTANCE": float(distance),
                "SIBLING_UNITS": float(distance / self.sibling_scale),
                "P_FIELD_PAIR": float(self.chance(distance))}

    def siblings(self, star: str, top: int = 50) -> list[dict]:
        """The ``top`` stars closest to ``star`` (itself excluded), nearest first: distance,
        distance in median sibling distances, and the chance a field pair is that close."""
        if top < 1:
            raise SpecsiftInputError(f"--top must be at least 1, got {top}")
        d = np.sqrt(((self.embedding - self._vector(star)) ** 2).sum(1))
        d[self._row[str(star).strip()]] = np.inf
        order = np.argsort(d, kind="stable")[:min(top, len(d) - 1)]
        return [self._row_of(self.ids[i], d[i]) for i in order]

    def pair(self, first: str, second: str) -> dict:
        """How alike two stars are; ``alike`` when closer than the median sibling distance."""
        d = float(np.sqrt(((self._vector(first) - self._vector(second)) ** 2).sum()))
        row = self._row_of(str(second), d)
        return {"APOGEE_ID_1": str(first), "APOGEE_ID_2": row.pop("APOGEE_ID"), **row,
                "alike": bool(d < self.sibling_scale)}


def search_from_files(model, config: dict, allstar, spectra, require=()) -> SiblingSearch:
    """Embed the stars of ``spectra`` that pass the model's field cuts in ``allstar``.

    ``require``: ids that must be searchable; each one that is not is named with the reason
    (not in the catalogue, outside the field cuts, or without a spectrum).
    """
    from ..io.catalogs import read_allstar
    from ..preprocess.stellar_samples import SampleConfig, giant_cuts
    from .fitting import embed_files

    if config.get("kind") != "spectra":
        raise SpecsiftInputError("sibling search needs a model fitted on spectra")
    table = read_allstar(allstar)
    sample_config = SampleConfig.from_dict(config["sample_config"])
    passes = giant_cuts(table, sample_config)
    ids = np.asarray(table["APOGEE_ID"]).astype(str)
    position = {star: i for i, star in enumerate(ids)}
    for star in require:
        row = position.get(str(star).strip())
        if row is None:
            raise SpecsiftInputError(f"APOGEE_ID {star} is not in the allStar catalogue", allstar)
        if not passes[row]:
            raise SpecsiftInputError(
                f"APOGEE_ID {star} is outside the model's field cuts (TEFF {table['TEFF'][row]:.0f}"
                f" in ({sample_config.teff_min:.0f}, {sample_config.teff_max:.0f}), LOGG "
                f"{table['LOGG'][row]:.2f} in ({sample_config.logg_min}, {sample_config.logg_max})"
                ", STAR_BAD clear, every species measured): the metric is not defined for it",
                allstar, row)
    chosen = ids[passes]
    found, embedding = embed_files(model, config, spectra,
                                   keep=lambda batch: np.isin(np.asarray(batch).astype(str),
                                                              chosen))
    missing = [s for s in require if str(s).strip() not in set(found)]
    if missing:
        raise SpecsiftInputError(f"APOGEE_ID {missing[0]} has no spectrum in the spectra files",
                                 str(spectra))
    reference = config["reference"]
    return SiblingSearch(found, embedding, float(reference["sibling_scale"][0]),
                         reference["field_pair_distances"])
