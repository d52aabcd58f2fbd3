"""A PyTorch view of a store: batches as tensors, reshuffled every epoch, split across workers.

The store already yields whole batches, so the DataLoader must not batch again: use
``DataLoader(ds, batch_size=None)``. With ``num_workers > 1`` each worker streams a disjoint set
of chunks, so an epoch still covers every row once. Each pass over the dataset advances its
epoch and thus its shuffle; with worker processes (which get a fresh copy each epoch) call
:meth:`StoreDataset.set_epoch` before each epoch, as with ``DistributedSampler``.
"""

from __future__ import annotations

import torch
from torch.utils.data import IterableDataset, get_worker_info

__all__ = ["StoreDataset"]


class StoreDataset(IterableDataset):
    """Batches of a :class:`~specsift.store.SpectraStore` as dicts of torch tensors.

    Arguments:
        store: the opened store.
        batch_size, split, rows: as in :meth:`SpectraStore.batches`.
        shuffle: reshuffle every epoch (seeded by ``seed + epoch``).
        seed: base seed of the shuffle.

    Example:
        >>> import tempfile
        >>> from specsift.datapaths import data_dir
        >>> from torch.utils.data import DataLoader
        >>> from specsift.store import SpectraStore, ingest
        >>> out = tempfile.mkdtemp() + "/desi.store"
        >>> _ = ingest(data_dir() / "real/desi", out, survey="desi")
        >>> ds = SpectraStore(out).torch_dataset(batch_size=256, split="train", seed=1)
        >>> for batch in DataLoader(ds, batch_size=None):
        ...     flux, ivar, z = batch["flux"], batch["ivar"], batch["z"]
        >>> type(flux).__name__, tuple(flux.shape)
        ('Tensor', (2, 7781))
    """

    def __init__(self, store, batch_size: int = 256, split: str | None = None,
                 shuffle: bool = True, seed: int = 0, rows=None):
        super().__init__()
        self.store = store
        self.batch_size = batch_size
        self.split = split
        self.shuffle = shuffle
        self.seed = seed
        self.rows = rows
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Fix the epoch (and so the shuffle) of the next pass."""
        self.epoch = int(epoch)

    def __iter__(self):
        rows = self.store.select(self.split, self.rows)
        info = get_worker_info()
        if info is not None and info.num_workers > 1:
            rows = rows[self.store.chunk_ids(rows) % info.num_workers == info.id]
        seed = self.seed + self.epoch
        self.epoch += 1
        for batch in self.store.batches(self.batch_size, rows=rows, shuffle=self.shuffle,
                                        seed=seed):
            yield {name: torch.from_numpy(value) for name, value in batch.items()}
