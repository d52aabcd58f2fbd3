"""A fitted RSCA on the small mock survey, shared by the metric tests (fitted once)."""

import pytest

from specsift.metric.dataset import load_rsca_data
from specsift.metric.fitting import field_obs
from specsift.metric.rsca import RSCA


@pytest.fixture(scope="session")
def mock_rsca(mock_apogee_dir):
    """(data, model): spectra samples of the 400-star mock and an RSCA with K=8."""
    data = load_rsca_data(mock_apogee_dir / "allStar-mock.fits",
                          mock_apogee_dir / "occam_member-mock.fits",
                          spectra=mock_apogee_dir / "spectra-mock.fits")
    model = RSCA(n_components=8, seed=0, ppca_params={"tol": 1e-4})
    return data, model.fit(data.field, data.members, data.clusters, field_obs=field_obs(data))
