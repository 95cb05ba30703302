"""Op table entries for dropout, with masks fixed so that finite differences see the same one.

A drawn mask differs between calls (and between the CPU's generator and the GPU's Philox
stream), so the table uses the settings whose mask is known on every device: eval mode and
``p = 0`` (the identity), ``p`` below 2**-30 (every element kept: the fused forward and the
backward ``grad * mask * scale`` with the mask all ones) and ``p`` within 2**-30 of 1 (every
element dropped, scale 2**30: a backward that forgot the mask would be off by 2**30).
Masks drawn with a fixed seed at any ``p`` are checked in ``tests/kernels/test_dropout.py``.
"""

from __future__ import annotations

from hypothesis import strategies as st

from gradflow.nn import functional as F

from . import OpInfo, Sample, shapes, values

KEEP_ALL = 2.0**-31  # no uniform of either generator is at or above 1 - p
DROP_ALL = 1.0 - 2.0**-30  # scale 2**30; a uniform below 2**-30 is one in 2**24 draws at most


def _sample(p_choices, training=True):
    def sample(draw):
        p = draw(st.sampled_from(p_choices))
        return Sample((values(draw, shapes(draw, max_dims=3)),), {"p": p, "training": training})

    return sample


def _dropout(x, p, training):
    return F.dropout(x, p, training)


def _dropout_ref(x, p, training):
    if not training or p == 0.0:
        return x
    return x * 0.0 if p == DROP_ALL else x * (1.0 / (1.0 - p))


OPS = [
    OpInfo("dropout_eval", _dropout, _dropout_ref, _sample((0.0, 0.5, 1.0), training=False)),
    OpInfo("dropout_p0", _dropout, _dropout_ref, _sample((0.0,))),
    OpInfo("dropout_keep_all", _dropout, _dropout_ref, _sample((KEEP_ALL,))),
    OpInfo("dropout_drop_all", _dropout, _dropout_ref, _sample((DROP_ALL,))),
]
