"""Built-in variants; importing this package registers them (see :mod:`msgl_core.registry`)."""

from msgl_core.variants import msgl, rgcn_fine

__all__ = ["msgl", "rgcn_fine"]
