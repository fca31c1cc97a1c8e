"""Coverage scores: detectors of one shape, fitted on training activations, higher = more in-distribution.

Every detector is an estimator: ``Detector(**params).fit(features, labels).score(features) -> (n,)``.
``input`` says what it reads: ``logits``, one layer's ``features``, or ``images`` (it runs the model
for input pre-processing, and takes it as its first argument).

=====================  ==========  ==========================================================
name                   input       method
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
"""

from au.detectors.base import Detector, NotFittedError
from au.detectors.energy import Energy
from au.detectors.knn import KNN
from au.detectors.mahalanobis import Mahalanobis
from au.detectors.mahalanobis_ensemble import MahalanobisEnsemble
from au.detectors.msp import MSP
from au.detectors.odin import Odin
from au.detectors.parzen import ParzenLSH
from au.detectors.trust import TrustScore

DETECTORS: dict[str, type[Detector]] = {
    d.name: d for d in (MSP, Odin, Energy, Mahalanobis, MahalanobisEnsemble, KNN, ParzenLSH, TrustScore)
}

__all__ = [
    "DETECTORS",
    "KNN",
    "MSP",
    "Detector",
    "Energy",
    "Mahalanobis",
    "MahalanobisEnsemble",
    "NotFittedError",
    "Odin",
    "ParzenLSH",
    "TrustScore",
]
