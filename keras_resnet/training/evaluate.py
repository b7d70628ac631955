"""Evaluation of the final weights: accuracy, loss, per-class accuracy, confusion matrix."""

import numpy as np


def predict_probabilities(model, images, batch_size=256, flip=False):
    """Returns class probabilities, averaged with the horizontal flip if `flip`.

    Args:
        model: `keras.Model` taking raw 0-255 images.
        images: uint8 or float array, `(n, height, width, channels)`.
        batch_size: int. Defaults to `256`.
        flip: bool. Test-time augmentation by horizontal flip. Defaults to `False`.

    Returns:
        float32 array `(n, num_classes)`.
    """
    images = np.asarray(images, dtype="float32")
    probabilities = model.predict(images, batch_size=batch_size, verbose=0)
    if flip:
        flipped = model.predict(images[:, :, ::-1], batch_size=batch_size, verbose=0)
        probabilities = (probabilities + flipped) / 2
    return np.asarray(probabilities, dtype="float32")


def classification_report(probabilities, labels, class_names):
    """Summarizes predictions against integer labels.

    Args:
        probabilities: array `(n, num_classes)`.
        labels: int array `(n,)`.
        class_names: sequence of str.

    Returns:
        A dict with `accuracy`, `loss` (cross-entropy), `per_class_accuracy` (name to
        accuracy) and `confusion_matrix` (rows true, columns predicted).

    Example:

    >>> report = classification_report(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]),
    ...                                np.array([0, 1, 1]), ["a", "b"])
    >>> report["accuracy"], report["per_class_accuracy"], report["confusion_matrix"]
    (0.6666666666666666, {'a': 1.0, 'b': 0.5}, [[1, 0], [1, 1]])
    """
    labels = np.asarray(labels).astype("int64")
    predicted = probabilities.argmax(axis=1)
    num_classes = len(class_names)
    confusion = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(confusion, (labels, predicted), 1)
    picked = probabilities[np.arange(len(labels)), labels]
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "accuracy": float((predicted == labels).mean()),
        "loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
        "per_class_accuracy": {name: float(a) for name, a in zip(class_names, per_class)},
        "confusion_matrix": confusion.tolist(),
    }
