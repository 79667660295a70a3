"""The fine-tuning loss terms, each a plain function of batch tensors (``keras.ops`` only).

Every term is a mean, so its scale does not grow with the batch size or the bit count and
one set of weights serves 16 to 64 bits.
"""

from __future__ import annotations

from keras import ops


def reconstruction_loss(images, reconstructions):
    """Mean squared pixel error."""
    return ops.mean(ops.square(images - reconstructions))


def quantization_loss(codes):
    """Mean over samples and bits of (h - sign(h))^2: pushes relaxed codes to +-1."""
    return ops.mean(ops.square(codes - ops.sign(codes)))


def balance_loss(codes):
    """Mean over bits of (batch mean of h)^2: each bit should fire on half of the batch."""
    return ops.mean(ops.square(ops.mean(codes, axis=0)))


def decorrelation_loss(codes):
    """Mean squared entry of h^T h / n - I: bits should be uncorrelated and carry +-1."""
    n_samples = ops.cast(ops.shape(codes)[0], codes.dtype)
    n_bits = codes.shape[-1]
    gram = ops.matmul(ops.transpose(codes), codes) / n_samples
    return ops.mean(ops.square(gram - ops.eye(n_bits, dtype=codes.dtype)))


def _cosine_similarity_matrix(a, b):
    a = a / ops.maximum(ops.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / ops.maximum(ops.norm(b, axis=1, keepdims=True), 1e-12)
    return ops.matmul(a, ops.transpose(b))


def nt_xent_loss(features_a, features_b, temperature: float = 0.5):
    """NT-Xent (SimCLR): each sample's other view is its positive, the other 2n - 2 samples
    of the two views are its negatives (cosine similarities divided by the temperature)."""
    n = ops.shape(features_a)[0]
    features = ops.concatenate([features_a, features_b], axis=0)
    logits = _cosine_similarity_matrix(features, features) / temperature
    logits = logits - 1e9 * ops.eye(2 * n, dtype=logits.dtype)
    positives = ops.concatenate([ops.arange(n, 2 * n), ops.arange(0, n)], axis=0)
    log_probabilities = ops.log_softmax(logits, axis=1)
    picked = ops.take_along_axis(log_probabilities, positives[:, None], axis=1)
    return -ops.mean(picked)


def similarity_preserving_loss(codes, features):
    """Mean squared gap between the codes' and the (fixed) features' cosine-similarity matrices:
    the codes learn the neighbourhood structure of the features, not the reverse."""
    target = ops.stop_gradient(_cosine_similarity_matrix(features, features))
    return ops.mean(ops.square(_cosine_similarity_matrix(codes, codes) - target))


def cluster_consistency_loss(assignments_a, assignments_b, entropy_weight: float = 5.0):
    """SCAN's clustering objective on softmax assignments of an image and its positive:
    -log of their dot product (both in one cluster, confidently) minus ``entropy_weight``
    times the entropy of the mean assignment over both views (every cluster in use), which
    keeps the trivial one-cluster solution away."""
    agreement = ops.sum(assignments_a * assignments_b, axis=1)
    consistency = -ops.mean(ops.log(ops.maximum(agreement, 1e-8)))
    mean = ops.mean(ops.concatenate([assignments_a, assignments_b], axis=0), axis=0)
    entropy = -ops.sum(mean * ops.log(ops.maximum(mean, 1e-8)))
    return consistency - entropy_weight * entropy


def self_label_loss(assignments_a, assignments_b, confidence: float = 0.99):
    """SCAN's self-labelling step: where view a is confident (its largest assignment above
    ``confidence``), its cluster becomes a pseudo-label for view b (cross-entropy), so that
    confident groups absorb their uncertain members. Zero when no sample is confident."""
    probabilities = ops.stop_gradient(assignments_a)
    confident = ops.cast(ops.max(probabilities, axis=1) > confidence, assignments_b.dtype)
    labels = ops.one_hot(ops.argmax(probabilities, axis=1), ops.shape(probabilities)[1], dtype=assignments_b.dtype)
    cross_entropy = -ops.sum(labels * ops.log(ops.maximum(assignments_b, 1e-8)), axis=1)
    return ops.sum(confident * cross_entropy) / ops.maximum(ops.sum(confident), 1.0)


def neighbour_agreement_loss(codes_a, codes_b):
    """Mean of (1 - cosine) between the relaxed codes of each item and of its neighbour: 0 when
    every pair's codes point the same way (balance and decorrelation keep that from collapsing)."""
    a = codes_a / ops.maximum(ops.norm(codes_a, axis=1, keepdims=True), 1e-12)
    b = codes_b / ops.maximum(ops.norm(codes_b, axis=1, keepdims=True), 1e-12)
    return ops.mean(1.0 - ops.sum(a * b, axis=1))
