"""deepraft: invisible, robust "only for you" stamps for pictures.

>>> import deepraft
>>> stamper = deepraft.load()                 # the bundled "default" model
>>> stamped = stamper.protect(image)          # PIL image in, PIL image out (same size)
>>> stamper.scan(stamped).protected
True
"""

__version__ = "0.1.0"

from deepraft.core.imageio import ImageError, Picture, read_image
from deepraft.runtime.stamper import ScanResult, Stamper, load

__all__ = ["ImageError", "Picture", "ScanResult", "Stamper", "__version__", "load", "read_image"]
