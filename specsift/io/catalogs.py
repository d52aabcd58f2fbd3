"""APOGEE allStar and OCCAM member catalogues: the labels RSCA needs, as astropy Tables.

Only the columns the similarity work uses are kept (ids, stellar parameters, flags, radial
velocity, extinction and abundances), with APOGEE_ID stripped of FITS padding so ids from
catalogues and spectra compare equal. Abundances come in three historical layouts, all turned
into one ``[X/H]`` matrix by :func:`abundance_matrix`: an ``X_H`` array column with an
``ELEMENTS`` HDU (DR16/DR17), named ``<X>_H`` columns (DR12), or ``<X>_FE`` plus ``FE_H``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import SpecsiftInputError

__all__ = ["read_allstar", "read_occam", "abundance_matrix", "MISSING", "ALLSTAR_COLUMNS",
           "OCCAM_COLUMNS"]

MISSING = -9999.99  # APOGEE's placeholder for an absent measurement
# Species APOGEE reports (CI = neutral carbon, TIII = ionised titanium).
ELEMENT_SYMBOLS = frozenset({"C", "CI", "N", "O", "NA", "MG", "AL", "SI", "P", "S", "K", "CA",
                             "TI", "TIII", "V", "CR", "MN", "FE", "CO", "NI", "CU", "GE", "RB",
                             "CE", "ND", "YB"})
ALLSTAR_COLUMNS = ("APOGEE_ID", "TEFF", "LOGG", "ASPCAPFLAG", "VHELIO_AVG", "AK_TARG", "SNR")
# which stars were observed together (plate field, field name, plate), kept when present
OBSERVING_COLUMNS = ("LOCATION_ID", "FIELD", "PLATE")
OCCAM_COLUMNS = ("CLUSTER", "APOGEE_ID", "CG_PROB")


def _strip(values) -> np.ndarray:
    return np.char.strip(np.asarray(values).astype(str))


def _open_table(path: str | Path, required: tuple[str, ...], what: str):
    path = Path(path)
    if not path.exists():
        raise SpecsiftInputError(f"{what} catalogue not found", path)
    try:
        hdul = fits.open(path, memmap=True)
        data = hdul[1].data
        names = set(data.columns.names)
    except (OSError, IndexError, AttributeError, TypeError) as error:
        raise SpecsiftInputError(f"cannot read as a {what} catalogue ({error})", path) from None
    missing = [c for c in required if c not in names]
    if missing:
        hdul.close()
        raise SpecsiftInputError(f"{what} catalogue lacks column(s) {', '.join(missing)}", path)
    return hdul, data, names


def read_allstar(path: str | Path) -> Table:
    """Read an allStar catalogue; abundances are kept as an ``X_H`` (N, n_elements) column.

    The table's ``meta['ELEMENTS']`` lists the species of ``X_H`` in order, so callers select
    species by name whatever the release.
    """
    hdul, data, names = _open_table(path, ALLSTAR_COLUMNS, "allStar")
    with hdul:
        table = Table({c: np.asarray(data[c]) for c in ALLSTAR_COLUMNS})
        table["APOGEE_ID"] = _strip(data["APOGEE_ID"])
        for column in OBSERVING_COLUMNS:
            if column in names:
                table[column] = _strip(data[column])
        elements, xh = _abundance_columns(hdul, data, names, Path(path))
    table["X_H"] = xh.astype(np.float32)
    table.meta["ELEMENTS"] = elements
    table.meta["FILENAME"] = str(path)
    return table


def _abundance_columns(hdul, data, names, path: Path) -> tuple[list[str], np.ndarray]:
    if "X_H" in names:
        if "ELEMENTS" in [h.name for h in hdul]:
            elements = _strip(hdul["ELEMENTS"].data.field(0)).tolist()
        else:
            header = hdul[1].header
            elements = [str(header[f"ELEM{i}"]).strip() for i in range(data["X_H"].shape[1])
                        if f"ELEM{i}" in header]
        xh = np.asarray(data["X_H"], np.float64)
        if len(elements) != xh.shape[1]:
            raise SpecsiftInputError("X_H has no element list (ELEMENTS HDU or ELEMi keys)", path)
        return [e.upper() for e in elements], xh
    named_h = sorted(c[:-2] for c in names if c.endswith("_H") and c[:-2] in ELEMENT_SYMBOLS)
    if named_h:
        return named_h, np.stack([np.asarray(data[f"{e}_H"], np.float64) for e in named_h], 1)
    named_fe = sorted(c[:-3] for c in names if c.endswith("_FE") and c[:-3] in ELEMENT_SYMBOLS)
    if named_fe and "FE_H" in names:
        feh = np.asarray(data["FE_H"], np.float64)
        cols = [np.where((np.asarray(data[f"{e}_FE"]) > MISSING / 2) & (feh > MISSING / 2),
                         np.asarray(data[f"{e}_FE"], np.float64) + feh, MISSING) for e in named_fe]
        return named_fe + ["FE"], np.stack(cols + [feh], 1)
    raise SpecsiftInputError("allStar catalogue has no abundance columns (X_H, <X>_H or <X>_FE)",
                             path)


def abundance_matrix(allstar: Table, species) -> np.ndarray:
    """(N, len(species)) [X/H] for the named species; absent values stay ``MISSING``."""
    elements = list(allstar.meta.get("ELEMENTS", []))
    unknown = [s for s in species if s.upper() not in elements]
    if unknown:
        raise SpecsiftInputError(f"species {', '.join(unknown)} not in the catalogue (it has "
                                 f"{', '.join(elements)})", allstar.meta.get("FILENAME"))
    index = [elements.index(s.upper()) for s in species]
    return np.asarray(allstar["X_H"], np.float64)[:, index]


def read_occam(path: str | Path) -> Table:
    """Read an OCCAM member catalogue (CLUSTER, APOGEE_ID, CG_PROB and any probability columns)."""
    hdul, data, names = _open_table(path, OCCAM_COLUMNS, "OCCAM member")
    with hdul:
        extra = [c for c in ("VHELIO_AVG", "FE_H", "RV_PROB", "FEH_PROB", "PM_PROB") if c in names]
        table = Table({c: np.asarray(data[c]) for c in OCCAM_COLUMNS + tuple(extra)})
    table["CLUSTER"] = _strip(table["CLUSTER"])
    table["APOGEE_ID"] = _strip(table["APOGEE_ID"])
    table.meta["FILENAME"] = str(path)
    return table
