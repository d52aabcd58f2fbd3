"""Bad objects get a flag and safe values, never a NaN that would reach a loss."""

import math

import torch

from specsift.models.inputs import (FLAG_NO_VALID_PIXELS, FLAG_NONFINITE, FLAG_Z_OUT_OF_RANGE,
                                    clean_batch, describe_flags)


def test_each_kind_of_bad_input_gets_its_flag_and_finite_values():
    flux = torch.ones(5, 8)
    ivar = torch.ones(5, 8)
    z = torch.tensor([0.1, 0.1, 0.9, 0.1, math.nan])
    ivar[1] = 0                       # no valid pixels
    flux[3, 2] = math.nan             # NaN flux on a pixel that claims to be valid
    flux[0, 5] = math.nan
    ivar[0, 5] = 0                    # NaN on a masked pixel is normal: no flag
    flux2, ivar2, z2, flag = clean_batch(flux, ivar, z, 0.0, 0.6)
    assert flag.tolist() == [0, FLAG_NO_VALID_PIXELS, FLAG_Z_OUT_OF_RANGE, FLAG_NONFINITE,
                             FLAG_NONFINITE]
    assert torch.isfinite(flux2).all() and torch.isfinite(ivar2).all() and torch.isfinite(z2).all()
    assert ivar2[3, 2] == 0 and ivar2[3].sum() == 7
    assert z2[4] == 0.0 and z2[2] == 0.9


def test_flags_are_described_in_words():
    assert describe_flags(0) == "fine"
    assert describe_flags(FLAG_NO_VALID_PIXELS | FLAG_Z_OUT_OF_RANGE) == \
        "no valid pixels; redshift outside the model range"
