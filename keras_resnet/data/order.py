"""The order training sees its examples in, as a function of the epoch, so a resume repeats it.

tf.data's `shuffle(reshuffle_each_iteration=True)` draws each epoch's order from a state
that starts over in a new process: a run resumed at epoch 5 would replay epoch 1's order.
Here pass `p` over the data is the permutation seeded by `(seed, p)`, and the stream of
batches is every pass in turn, so the batches from any step on can be rebuilt without
replaying what came before: a resumed run sees the very batches the uninterrupted run saw.
(The random augmentation draws are Keras layers' own state and are not replayed.)
"""

import math


def batches_per_pass(num_examples, batch_size, drop_remainder=False):
    """Batches one pass over `num_examples` gives.

    Example:

    >>> batches_per_pass(10, 4), batches_per_pass(10, 4, drop_remainder=True)
    (3, 2)
    """
    rounding = math.floor if drop_remainder else math.ceil
    return rounding(num_examples / batch_size)


def index_batches(num_examples, batch_size, seed, start_batch=0, drop_remainder=False):
    """An endless `tf.data.Dataset` of int64 index batches, from batch `start_batch` on.

    Args:
        num_examples: int. Examples in one pass.
        batch_size: int. Indices per batch (the last batch of a pass may be smaller).
        seed: int. Seed of every pass's permutation.
        start_batch: int. Batches of the stream to skip: `epoch * steps_per_epoch` when
            resuming at `epoch`. Defaults to `0`.
        drop_remainder: bool. Drop each pass's last partial batch. Defaults to `False`.

    Returns:
        A `tf.data.Dataset` of 1-D int64 tensors.

    Raises:
        ValueError: if a pass has no batch, or `start_batch` is negative.
    """
    import tensorflow as tf

    per_pass = batches_per_pass(num_examples, batch_size, drop_remainder)
    if per_pass < 1 or start_batch < 0:
        raise ValueError(f"Cannot batch {num_examples} examples by {batch_size} from batch "
                         f"{start_batch}. Received: start_batch={start_batch}")
    first_pass, skip = divmod(int(start_batch), per_pass)
    seed = int(seed)

    def one_pass(index):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(num_examples, dtype=tf.int64),
            seed=tf.stack([tf.constant(seed, tf.int64), index]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder)

    passes = tf.data.Dataset.range(first_pass, tf.int64.max)
    return passes.flat_map(one_pass).skip(skip)
