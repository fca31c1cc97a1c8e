"""Coverage scores: detectors of one shape, fitted on training activations, higher = more in-distribution.

Every detector is an estimator: ``Detector(**params).fit(X, y).score_samples(X) -> (n,)``, and
declares what it consumes (:class:`Consumes`): the logits, one layer's features, or images (it
then holds the model, its first parameter, and runs it for input pre-processing).

=====================  ==========  ==========================================================
name                   consumes    method
=====================  ==========  ==========================================================
msp                    logits      max softmax (Hendrycks & Gimpel 2017, arXiv 1610.02136)
odin                   images      temperature + input pre-processing (Liang et al. 2018, arXiv 1706.02690)
energy                 logits      logsumexp of logits (Liu et al. 2020, arXiv 2010.03759)
mahalanobis            features    tied-covariance class Gaussians (Lee et al. 2018, arXiv 1807.03888)
mahalanobis_ensemble   images      several layers + pre-processing + logistic combiner (same paper)
knn                    features    k-th nearest normalised neighbour (Sun et al. 2022, arXiv 2204.06507)
parzen_lsh             features    Parzen density over neuron partitions, LSH-accelerated (AU)
trust                  features    trust score (Jiang et al. 2018, arXiv 1805.11783)
=====================  ==========  ==========================================================

A new detector is one new file (a :class:`Detector` subclass) and one line in
:mod:`au.detectors.registry`.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "base": ["Consumes", "Detector", "NotFittedError", "clone"],
        "energy": ["Energy"],
        "inputs": ["Inputs", "SCORE_ROWS", "fit_detector", "score_detector", "score_in_chunks"],
        "knn": ["KNN"],
        "mahalanobis": ["Mahalanobis"],
        "mahalanobis_ensemble": ["MahalanobisEnsemble"],
        "msp": ["MSP"],
        "odin": ["Odin"],
        "parzen": ["ParzenLSH"],
        "registry": ["DENSITY", "DETECTORS", "NAMES", "QUICK", "build", "check_names", "detector_class"],
        "trust": ["TrustScore"],
    },
)
