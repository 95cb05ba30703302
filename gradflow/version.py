"""gradflow's version, in a module of its own so that ``info`` and the CLI can read it without importing
the ``gradflow`` package facade (which imports them: a cycle)."""

__version__ = "0.1.0"
