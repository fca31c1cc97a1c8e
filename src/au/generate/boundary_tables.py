"""The tables ``au boundary`` writes, each with one declared schema checked on every write (au.tables).

``boundary.parquet``: one row per generated sample - what the classifier says (its class
probabilities) and what every detector scores, from the scores job that scored the samples::

    example_id  string              the sample's id in the generated set
    pred        int64               the classifier's prediction
    max_prob    float64             its maximum softmax probability
    probs       list<float32>[K]    its class probabilities
    <detector>  float64             one column per detector of the scores job (higher = more in-distribution)

``acceptance.parquet``: one row per (leaderboard entry, method, epsilon) of the ``in`` stream: the
certified threshold and the share of generated samples the selective classifier would accept.

``decisions.parquet``: one row per (generated sample, leaderboard entry, method, epsilon) of the ``in``
stream: the sample's score, the certified threshold and whether that selective classifier accepts it.

``guided_backprop.parquet``: the guided-backprop map of every sample for its predicted class, in the
columns of ``au explain``'s ``attributions.parquet`` (:func:`au.explain.schema.attributions_schema`).

``comparison.parquet``: one row per (OOD set, detector) scored for both classifiers: AUROC and
TNR at 95% TPR of the standard (baseline) and of the confident classifier.
"""

from __future__ import annotations

import pyarrow as pa

BOUNDARY_FILE = "boundary.parquet"
ACCEPTANCE_FILE = "acceptance.parquet"
DECISIONS_FILE = "decisions.parquet"
MAPS_FILE = "guided_backprop.parquet"
COMPARISON_FILE = "comparison.parquet"


def boundary_schema(num_classes: int, detectors) -> pa.Schema:
    """``boundary.parquet``'s schema for ``num_classes`` probabilities and these detector columns."""
    return pa.schema(
        [
            pa.field("example_id", pa.string(), nullable=False),
            pa.field("pred", pa.int64(), nullable=False),
            pa.field("max_prob", pa.float64(), nullable=False),
            pa.field("probs", pa.list_(pa.float32(), num_classes), nullable=False),
            *(pa.field(d, pa.float64(), nullable=False) for d in detectors),
        ]
    )


ACCEPTANCE_SCHEMA = pa.schema(
    [
        pa.field("entry", pa.string(), nullable=False),  # detector, or detector@layer
        pa.field("method", pa.string(), nullable=False),  # the certificate: "sgr" or "ltt"
        pa.field("epsilon", pa.float64(), nullable=False),
        pa.field("certified", pa.bool_(), nullable=False),
        pa.field("threshold", pa.float64()),  # null when nothing is certified
        pa.field(
            "in_coverage", pa.float64(), nullable=False
        ),  # share of in-distribution test inputs accepted
        pa.field("accepted", pa.int64(), nullable=False),  # generated samples accepted
        pa.field("accepted_share", pa.float64(), nullable=False),
    ]
)

DECISIONS_SCHEMA = pa.schema(
    [
        pa.field("example_id", pa.string(), nullable=False),  # the generated sample
        pa.field("entry", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("epsilon", pa.float64(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),  # the sample's score under the entry's detector
        pa.field("threshold", pa.float64()),  # null when nothing is certified
        pa.field("accepted", pa.bool_(), nullable=False),  # score >= threshold (never, when uncertified)
    ]
)

COMPARISON_SCHEMA = pa.schema(
    [
        pa.field("ood_set", pa.string(), nullable=False),
        pa.field("detector", pa.string(), nullable=False),
        pa.field("auroc_standard", pa.float64(), nullable=False),
        pa.field("auroc_confident", pa.float64(), nullable=False),
        pa.field(
            "tnr95_standard", pa.float64(), nullable=False
        ),  # 1 - FPR at the first threshold with TPR >= 95%
        pa.field("tnr95_confident", pa.float64(), nullable=False),
    ]
)
