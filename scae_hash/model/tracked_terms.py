"""A model whose loss is a weighted sum of named terms, each term's mean tracked as a metric (so
the progress line and the stage's history CSV show every term), shared by the fine-tuning model
and the hash-head trainer."""

from __future__ import annotations

from typing import Any

import keras


class TrackedTerms:
    """Mixin for a ``keras.Model`` with ``trackers`` (a ``keras.metrics.Mean`` per term) and
    ``term_weights`` (a weight per term)."""

    trackers: dict[str, keras.metrics.Mean]
    term_weights: dict[str, float]

    def weighted_total(self, terms: dict[str, Any]) -> Any:
        """Track each term's value and return the weighted sum, in the order of ``terms``."""
        total = 0.0
        for term, value in terms.items():
            self.trackers[term].update_state(value)
            total = total + self.term_weights[term] * value
        return total

    @property
    def metrics(self) -> list:
        tracked = super().metrics
        return tracked + [tracker for tracker in self.trackers.values() if tracker not in tracked]
