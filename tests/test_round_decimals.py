"""round(x, decimals) computes as PyTorch 2.13: scaled by 10^|decimals| in the op's math type, float32 for
float16 (issue 12, a fuzz finding: in float16, x * 10 overflowed past 6553.5 and halves rounded otherwise)."""

import numpy as np
import pytest

import gradflow as gf

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("decimals", [1, 2, 3, -1, -2, 6, 400, -400])
def test_round_decimals_matches_torch(dtype, decimals):
    rng = np.random.default_rng(decimals % 97)
    values = np.concatenate(
        [
            rng.uniform(-60000, 60000, 500),
            rng.uniform(-10, 10, 500),
            np.round(rng.uniform(-100, 100, 500), 1) + 0.05,  # halves after scaling
            [np.inf, -np.inf, np.nan, 0.0, -0.0, 6553.6, 65504.0, 1e-5],
        ]
    ).astype(dtype)
    ours = gf.round(gf.tensor(values), decimals=decimals)
    theirs = torch.round(torch.tensor(values), decimals=decimals)
    assert str(ours.dtype) == f"gradflow.{dtype}"
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_float16_past_6553_keeps_its_value():
    # 7000 * 10 overflows float16 (max 65504): computed in float16 it became inf
    assert gf.round(gf.tensor([7000.0], dtype=gf.float16), decimals=1).tolist() == [7000.0]
