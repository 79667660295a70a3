"""scae-hash: unsupervised image hashing with stacked convolutional autoencoders."""

__version__ = "0.1.0"
