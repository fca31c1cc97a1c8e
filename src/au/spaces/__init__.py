"""Feature spaces other than a network's layers, for asking whether the network's space is where coverage should
be measured (``au score --space``): raw pixels, HOG, and bags of ORB or BRISK keypoint descriptors.

>>> from au.spaces import make_space
>>> space = make_space("hog").fit(train.images)       # uint8 (N, H, W, C)
>>> features = space.transform(test.images)           # float32 (N, d): what kNN and Parzen read

Modules: ``pixels``, ``hog``, ``keypoints`` (ORB and BRISK bags of visual words) and ``registry``.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={"registry": ["SPACES", "make_space"]},
)
