"""The SCAE model: conv-AE blocks, the multi-scale stacked encoder, its pretraining and the
fine-tuning model with the hash head, augmentation and losses (Keras 3, backend-agnostic)."""
