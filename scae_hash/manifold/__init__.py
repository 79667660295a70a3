"""Manifold hashing: a neighbourhood graph of the data (UMAP, from umap-learn), its embedding,
the inductive extension of that embedding to new images, and its binarization.

The manifold baseline (`scae_hash.hashers.manifold`) and the SCAE trained on the same graph
(`scae_hash.hashers.scae_manifold`) share these pieces, so the two differ only in how a new
image reaches the embedding: through its nearest training images, or through the network.
"""
