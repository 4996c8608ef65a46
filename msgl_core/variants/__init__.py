"""Built-in variants; importing this package registers them (see :mod:`msgl_core.registry`)."""

from msgl_core.variants import downscaling, fine_only, msgl

__all__ = ["downscaling", "fine_only", "msgl"]
