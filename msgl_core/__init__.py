"""msgl: Multi-Scale Graph Learning for fine-scale stream temperature in the Delaware River Basin.

Fan et al., "Multi-Scale Graph Learning for Anti-Sparse Downscaling", AAAI-25, arXiv 2505.01948.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("msgl")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"
