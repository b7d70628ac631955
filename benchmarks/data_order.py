"""Batches per second of the training input before and after resumable ordering.

Before: tf.data `shuffle(reshuffle_each_iteration=True)` of the cached slices (repeated).
After: `keras_resnet.data.order` (pass p ordered by (seed, p), gathered per batch), which a
resumed run can start at any batch. CIFAR-sized random uint8 data, batch 128, no
augmentation, so only the ordering and batching are timed.

    python benchmarks/data_order.py
"""

import time

import numpy as np

from keras_resnet.data.pipeline import build_dataset


def main():
    x = np.random.default_rng(0).integers(0, 255, (50000, 32, 32, 3), dtype=np.uint8)
    y = np.random.default_rng(1).integers(0, 10, 50000).astype(np.int32)
    for name, kwargs in (("shuffle (before)", {}), ("order stream (after)", {"start_batch": 0})):
        dataset = build_dataset(x, y, 10, 128, training=True, augment=(), seed=0, **kwargs)
        iterator = iter(dataset if kwargs else dataset.repeat())
        for _ in range(20):
            next(iterator)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(391):
                next(iterator)
            times.append(time.perf_counter() - start)
        print(f"{name}: {391 / min(times):.0f} batches/s (best of 3 epochs of 391 batches)")


if __name__ == "__main__":
    main()
