"""The two stellar samples RSCA learns from: APOGEE field giants and OCCAM open-cluster members.

Cuts follow de Mijolla & Ness (2022, ApJ 926, 193, Sect. 3): red giants in a narrow
Teff/logg box (where the spectra vary mostly with chemistry), no missing abundance among the
chosen species, ASPCAP's STAR_BAD flag clear; members with OCCAM ``CG_PROB`` above 0.8, clusters
with at least two members (a sibling distance needs a pair), and members removed from the
field so that a star is never its own doppelganger. Every threshold lives in
:class:`SampleConfig` so an experiment records exactly what it used.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
from astropy.table import Table

from ..errors import SpecsiftInputError
from ..io.catalogs import MISSING, abundance_matrix

__all__ = ["SampleConfig", "StellarSamples", "select_samples", "giant_cuts", "DEFAULT_SPECIES",
           "SUBSET_SPECIES"]

logger = logging.getLogger("specsift.preprocess")

# The 19 distinct species of the DR16 X_H array (C I and Ti II duplicate C and Ti).
DEFAULT_SPECIES = ("C", "N", "O", "NA", "MG", "AL", "SI", "S", "K", "CA", "TI", "V", "CR", "MN",
                   "FE", "CO", "NI", "CU", "CE")
# A well-measured subset (Fig. 4 of the paper compares all abundances with a subset).
SUBSET_SPECIES = ("FE", "MG", "SI", "CA", "AL", "MN", "NI", "C", "N", "O")


@dataclass
class SampleConfig:
    """Thresholds of the field and member samples (defaults: de Mijolla & Ness 2022)."""

    teff_min: float = 4000.0
    teff_max: float = 5000.0
    logg_min: float = 1.5
    logg_max: float = 3.0
    star_bad_bit: int = 23
    species: tuple[str, ...] = field(default_factory=lambda: DEFAULT_SPECIES)
    min_cg_prob: float = 0.8
    min_members: int = 2
    require_member_abundances: bool = False

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "SampleConfig":
        """Inverse of :meth:`to_dict` (lists become tuples again)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@dataclass
class StellarSamples:
    """Row indices into the allStar table for the field and member samples.

    Arguments:
        field: (N_field,) allStar rows of the field giants.
        members: (N_members,) allStar rows of the cluster members.
        clusters: (N_members,) cluster name of each member.
        allstar: the allStar table the indices refer to.
    """

    field: np.ndarray
    members: np.ndarray
    clusters: np.ndarray
    allstar: Table

    @property
    def rows(self) -> np.ndarray:
        """Members then field: the order in which experiments stack the two samples."""
        return np.concatenate([self.members, self.field])

    def column(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(members, field) values of an allStar column, e.g. VHELIO_AVG or AK_TARG."""
        values = np.asarray(self.allstar[name], np.float64)
        return values[self.members], values[self.field]


def _member_map(occam: Table, config: SampleConfig) -> dict[str, str]:
    keep = np.asarray(occam["CG_PROB"], np.float64) > config.min_cg_prob
    order = np.argsort(-np.asarray(occam["CG_PROB"], np.float64)[keep], kind="stable")
    ids = np.asarray(occam["APOGEE_ID"])[keep][order]
    names = np.asarray(occam["CLUSTER"])[keep][order]
    mapping: dict[str, str] = {}
    for star, cluster in zip(ids, names):  # a star listed twice keeps its most probable cluster
        mapping.setdefault(str(star), str(cluster))
    return mapping


def giant_cuts(allstar: Table, config: SampleConfig | None = None) -> np.ndarray:
    """(N,) bool: the field cuts of ``config`` (Teff/logg box, STAR_BAD clear, every species
    measured), membership aside."""
    config = config or SampleConfig()
    teff = np.asarray(allstar["TEFF"], np.float64)
    logg = np.asarray(allstar["LOGG"], np.float64)
    star_bad = (np.asarray(allstar["ASPCAPFLAG"]).astype(np.int64) >> config.star_bad_bit) & 1
    abundances_ok = (abundance_matrix(allstar, config.species) > MISSING / 2).all(axis=1)
    return ((teff > config.teff_min) & (teff < config.teff_max) & (logg > config.logg_min)
            & (logg < config.logg_max) & (star_bad == 0) & abundances_ok)


def select_samples(allstar: Table, occam: Table, config: SampleConfig | None = None
                   ) -> StellarSamples:
    """Apply the field and member cuts; returns indices into ``allstar``.

    Raises :class:`SpecsiftInputError` when no field star or fewer than two usable clusters
    remain, naming the catalogue and the cut that emptied the sample.
    """
    config = config or SampleConfig()
    ids = np.asarray(allstar["APOGEE_ID"])
    membership = _member_map(occam, config)
    cluster_of = np.array([membership.get(str(i), "") for i in ids])
    unmatched = sorted(set(membership) - set(ids.tolist()))
    if unmatched:
        logger.info("%d OCCAM members are not in the allStar catalogue (e.g. %s)",
                    len(unmatched), unmatched[0])

    abundances_ok = (abundance_matrix(allstar, config.species) > MISSING / 2).all(axis=1)
    is_field = (cluster_of == "") & giant_cuts(allstar, config)
    is_member = cluster_of != ""
    if config.require_member_abundances:
        is_member &= abundances_ok

    names, counts = np.unique(cluster_of[is_member], return_counts=True)
    small = names[counts < config.min_members]
    if len(small):
        logger.info("dropping cluster(s) with fewer than %d members: %s", config.min_members,
                    ", ".join(small))
        is_member &= ~np.isin(cluster_of, small)
    source = allstar.meta.get("FILENAME")
    if not is_field.any():
        raise SpecsiftInputError("no field star passes the Teff/logg/STAR_BAD/abundance cuts "
                                 f"{config.to_dict()}", source)
    if len(np.unique(cluster_of[is_member])) < 2:
        raise SpecsiftInputError(f"fewer than two clusters keep >= {config.min_members} members "
                                 f"with CG_PROB > {config.min_cg_prob}", occam.meta.get("FILENAME"))
    members = np.flatnonzero(is_member)
    logger.info("field sample: %d giants; members: %d stars in %d clusters", is_field.sum(),
                len(members), len(np.unique(cluster_of[members])))
    return StellarSamples(np.flatnonzero(is_field), members, cluster_of[members], allstar)
