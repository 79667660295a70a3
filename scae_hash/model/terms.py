"""The names of the loss terms, defined once: the config's weights, the model's loss and the
head stage all read them here. No Keras, so that the config can import it."""

from __future__ import annotations

#: The terms on the hash codes alone (the tanh head's relaxed bits).
CODE_TERMS: tuple[str, ...] = ("quantization", "balance", "decorrelation", "similarity")

#: The fine-tuning terms, each a weight in the config's ``loss`` section; in this order the
#: model tracks them (the columns of a stage's history).
LOSS_TERMS: tuple[str, ...] = ("reconstruction", "quantization", "balance", "decorrelation", "contrastive",
                               "similarity", "cluster", "self_label")

#: The hash-head stage's terms, each a weight in the config's ``head`` section: the code terms
#: and the agreement of neighbours' codes.
HEAD_TERMS: tuple[str, ...] = (*CODE_TERMS, "neighbour")
