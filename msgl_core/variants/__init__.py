"""Built-in variants; importing this package registers them (see :mod:`msgl_core.registry`)."""

from msgl_core.variants import downscaling, dynamic, fine_only, msgl, ot_diffusion

__all__ = ["downscaling", "dynamic", "fine_only", "msgl", "ot_diffusion"]
