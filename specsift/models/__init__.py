"""Neural models of spectra: the redshift-invariant autoencoder and the latent-space flow.

``modeldir`` is the entry point: one directory holds one complete model (config, weights with
their sha256, training log), and every other step loads models through it.
"""

__all__: list[str] = []
