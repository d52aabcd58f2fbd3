"""The evaluation card of ``specsift demo``: the demo's outputs against the mocks' truth files.

The card is the one place where the demo reads truth. It gathers:

* ``outliers``: ROC AUC of the catalogue ranking (RANK) for the injected anomalies of the BGS
  sample against its normal galaxies, and the fraction of anomalies among the top 1% and the
  top 20 of the BGS sample (:mod:`.mock_desi`);
* ``star_galaxy``: accuracy of the catalogue's IS_STAR on normal BGS galaxies + MWS stars;
* ``rsca``: the leave-one-cluster-out doppelganger rate of ``specsift rsca evaluate`` beside the
  oracle's, the rate of the mock's true abundances on the same stars (:mod:`.mock_apogee`);
* ``models``: validation reduced chi2 of the galaxy and star autoencoders, from their
  training logs (all objects) and, when the stores are given, over the objects the truth calls
  normal (what the bars use: one bright injected anomaly can double a pooled chi2);
* ``bars``: each of the demo's quality bars (:data:`DEMO_BARS`) and whether it is met;
* ``seconds``: the wall time of the demo run (``resumed``: it skipped steps done by an
  earlier run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..atomic import atomic_path

__all__ = ["DEMO_BARS", "evaluation_card", "model_validation", "format_card", "write_card"]

#: the demo's quality bars: (card section, key, comparison, threshold)
DEMO_BARS = (("models", "galaxy", "<=", 1.3), ("models", "star", "<=", 1.5),
             ("star_galaxy", "accuracy", ">=", 0.98))

TITLE = "evaluation: the demo's outputs against the mocks' truth files"


def model_validation(model_dir: str | Path) -> dict:
    """Validation reduced chi2 of a trained autoencoder, from its ``training_log.jsonl``: that of
    the epoch the trainer kept (the lowest validation loss of the last phase)."""
    from ..models.modeldir import ModelDir
    from ..models.training import kept_epoch

    log = ModelDir(model_dir).training_log()
    if not log:
        return {"val_reduced_chi2": math.nan, "epochs": 0, "kept_epoch": None}
    kept = kept_epoch(log)
    return {"val_reduced_chi2": float(kept["val_reduced_chi2"]),
            "epochs": sum(not r.get("start") for r in log),
            "kept_epoch": int(kept["epoch"]), "seconds": float(sum(r.get("seconds", 0.0)
                                                                   for r in log))}


def evaluation_card(*, catalog, desi_truth, galaxy_model, star_model, rsca_model,
                    rsca_evaluation, apogee: dict, seconds: float, resumed: bool = False,
                    top: int = 20, stores: dict | None = None) -> dict:
    """The card (a JSON-ready dict) of one demo run.

    Arguments:
        catalog: catalogue written by ``specsift score``; desi_truth: the mock's truth.fits.
        galaxy_model, star_model: the autoencoder model folders.
        rsca_model: the RSCA model folder; rsca_evaluation: the JSON of ``rsca evaluate``.
        apogee: ``allstar``, ``occam``, ``spectra`` and ``truth`` paths of the mock APOGEE set.
        seconds: wall time of the demo run; resumed: whether it found the outputs of an earlier
            run and skipped those steps (then ``seconds`` is not the time of the whole demo).
        stores: ``galaxy`` and ``star`` store folders the models were trained on; with them the
            card adds the validation chi2 over the objects the truth calls normal, which the
            bars then use (the training log's figure counts the injected anomalies too).
    """
    from ..catalog import read_catalog
    from .mock_apogee import oracle_rate
    from .mock_desi import (match_truth, normal_validation_chi2, outlier_metrics,
                            star_galaxy_metrics)

    table, _ = read_catalog(catalog)
    truth = match_truth(table, desi_truth)
    outliers = outlier_metrics(table, truth, top=top)
    outliers.update(ranking="RANK", n_unscored=int(sum(not math.isfinite(v)
                                                       for v in table["OUTLIER_SCORE"])))
    rsca = json.loads(Path(rsca_evaluation).read_text())
    oracle = oracle_rate(rsca_model, apogee["allstar"], apogee["occam"], apogee["spectra"],
                         apogee["truth"])
    card = {"step": TITLE,
            "outliers": outliers,
            "star_galaxy": star_galaxy_metrics(table["IS_STAR"], truth),
            "rsca": {"doppelganger_rate": float(rsca["global_rate"]),
                     "cross_validation": rsca.get("cross_validation", "leave-one-cluster-out"),
                     "oracle_rate": float(oracle.global_rate),
                     "oracle": "true abundances of the same stars, no training",
                     "n_members": int(rsca["n_members"]), "n_field": int(rsca["n_field"])},
            "models": {"galaxy": model_validation(galaxy_model),
                       "star": model_validation(star_model)},
            "seconds": float(seconds), "resumed": bool(resumed)}
    for name, model in (("galaxy", galaxy_model), ("star", star_model)):
        if stores and name in stores and (Path(stores[name]) / "manifest.json").exists():
            card["models"][name].update(normal_validation_chi2(model, stores[name], desi_truth))
    card["bars"] = _bars(card)
    return card


def _value(card: dict, section: str, key: str) -> float:
    value = card[section][key]
    if section != "models":
        return value
    return value.get("val_reduced_chi2_normal", value["val_reduced_chi2"])


def _bars(card: dict) -> dict:
    out = {}
    for section, key, op, threshold in DEMO_BARS:
        value = _value(card, section, key)
        name = key if section != "models" else (
            "val_reduced_chi2_normal" if "val_reduced_chi2_normal" in card[section][key]
            else "val_reduced_chi2")
        met = value <= threshold if op == "<=" else value >= threshold
        out[f"{section}.{key}.{name} {op} {threshold}"] = bool(met)
    return out


def _row(label: str, value: str, bar: str = "") -> str:
    return f"  {label:<40} {value:<9} {bar}".rstrip()


def format_card(card: dict) -> str:
    """The card as the lines the demo prints."""
    o, sg, r, m = card["outliers"], card["star_galaxy"], card["rsca"], card["models"]
    bars = {(s, k): f"[bar {op} {t}: {'met' if ok else 'NOT MET'}]"
            for (s, k, op, t), ok in zip(DEMO_BARS, card["bars"].values())}
    time = f"{card['seconds'] / 60:.1f} min"
    return "\n".join([
        f"== {card['step']} ==",
        f"outliers of the BGS sample ({o['n_bgs']} galaxies, {o['n_anomalies']} injected "
        f"anomalies; ranked by {o['ranking']})",
        _row("ROC AUC, anomalies vs normal galaxies", f"{o['auc']:.4f}"),
        _row(f"anomalies among the top {o['top_fraction']:.0%} ({o['n_top_fraction']})",
             f"{o['top_fraction_anomaly_fraction']:.3f}"),
        _row(f"anomalies among the top {o['top']}", f"{o['top_anomaly_fraction']:.3f}"),
        f"star/galaxy ({sg['n_galaxies']} normal galaxies + {sg['n_stars']} MWS stars)",
        _row("accuracy", f"{sg['accuracy']:.4f}", bars["star_galaxy", "accuracy"]),
        _row("galaxies / stars classified right",
             f"{sg['galaxies_correct']:.4f} / {sg['stars_correct']:.4f}"),
        f"RSCA doppelganger rate ({r['n_members']} members, {r['n_field']} field stars)",
        _row(f"RSCA, {r['cross_validation']}", f"{r['doppelganger_rate']:.4f}"),
        _row("oracle, true abundances", f"{r['oracle_rate']:.4f}"),
        "validation reduced chi2 (normal objects; all objects, as in the training log)",
        *[_row(f"{name} model", f"{_value(card, 'models', name):.3f}",
               f"{bars['models', name]} (all: {m[name]['val_reduced_chi2']:.3f})")
          for name in ("galaxy", "star")],
        f"{'total time':<42} {time}" + (" (resumed run: steps done before are not counted)"
                                         if card.get("resumed") else "")])


def write_card(card: dict, path: str | Path) -> Path:
    """Write the card as JSON, atomically (NaN written as null)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_nan_to_none(card), indent=1) + "\n")
    return path


def _nan_to_none(value):
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
