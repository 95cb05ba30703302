"""Fused primitives, one module per kernel family (``kernels/<family>.cu``).

Each module holds, for its family: ``KERNELS`` (the template instantiations
the loader compiles), the NumPy reference of every primitive (the CPU
backend's implementation, and what the ``cuda`` tests compare the kernels
with), and the CuPy launchers. The backends expose them as methods. The
optimizer family is the exception: its reference is the CPU's update,
``../optim_numpy.py``, so ``optim.py`` holds only the launchers.
"""
