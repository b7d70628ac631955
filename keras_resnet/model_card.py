"""A shipped model's `README.md`: front matter as Keras and keras-hub cards have it, then text.

Everything in it is read from `card.json` (`keras_resnet.shipping.build_card`): measured
numbers only, each with what it was measured on.
"""


def _percent(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def card_markdown(card):
    """The model card for `card` (a dict of `card.json`).

    Example:

    >>> text = card_markdown({"name": "tiny", "variant": "tiny", "trainable_params": 195738,
    ...     "architecture_changes": {}, "macs_per_image": 28000000, "test_accuracy": 0.85,
    ...     "tta_test_accuracy": 0.86, "int8_test_accuracy": 0.849,
    ...     "int8_tta_test_accuracy": 0.858, "int8_bytes": 220000, "int8_latency_ms": None,
    ...     "tflm_test_accuracy": None, "arena_bytes": None, "flash_bytes": None,
    ...     "float_bytes": 900000, "seeds_test_accuracy": None, "test_images": 10000,
    ...     "spot_check": {"images": 500, "which": "the first 50 test images of each class",
    ...                    "accuracy": 0.85, "int8_accuracy": 0.84},
    ...     "epochs": 50, "train_seconds": 3600.0, "recipe": {"optimizer": "adam"},
    ...     "trained_on": {"device": "cpu x2", "backend": "tensorflow",
    ...                    "precision": "float32"},
    ...     "data": "JPEG copy (cifar10-jpeg)", "date": "2026-11-30T00:00:00+00:00"})
    >>> text.splitlines()[:2]
    ['---', 'library_name: keras']
    """
    seeds = card["seeds_test_accuracy"]
    seeds_text = (f"{_percent(seeds['mean'])} +- {100 * seeds['std']:.2f} over {seeds['n']} "
                  f"seeds ({', '.join(map(str, seeds['seeds']))}); this model is seed "
                  f"{card['recipe'].get('seed')}" if seeds else "one seed trained")
    spot = card["spot_check"]
    recipe = ", ".join(f"{key}={value}" for key, value in sorted(card["recipe"].items())
                       if value not in (None, [], 0.0, False))
    tflm = ("not exported (tflite-micro was not installed when it was shipped)"
            if card["tflm_test_accuracy"] is None else
            f"{_percent(card['tflm_test_accuracy'])} on the test set under TFLM's reference "
            f"kernels, in an arena of {card['arena_bytes']:,} bytes; {card['flash_bytes']:,} "
            "bytes of model in flash")
    latency = ("-" if card["int8_latency_ms"] is None else
               f"{card['int8_latency_ms']['mean']:.2f} ms a 32x32 image (mean, one thread of "
               "the CPU that shipped it; a microcontroller is much slower)")
    name = card["name"]
    changes = card["architecture_changes"]
    call = ", ".join([f'"{card["variant"]}"'] + [
        f"{key}={tuple(value) if isinstance(value, list) else value!r}"
        for key, value in changes.items()])
    return f"""---
library_name: keras
tags:
- image-classification
- cifar10
- resnet
- tinyml
- keras-resnet
datasets:
- cifar10
metrics:
- accuracy
model-index:
- name: {name}
  results:
  - task: image-classification
    dataset: cifar10 ({card['data']})
    metrics:
    - type: accuracy
      value: {card['test_accuracy']:.4f}
---

# {name}: keras_resnet's `{card['variant']}` trained on CIFAR-10

Architecture `{card['variant']}`{" changed" if changes else ""}
(`keras_resnet.get_variant({call})`):
{card['trainable_params']:,} trainable parameters, {card['macs_per_image'] or 0:,}
multiply-accumulates an image. Input: raw 32x32 RGB pixels, 0-255 (normalization is
inside the model); output: the probabilities of CIFAR-10's ten classes.

## Results (test set: {card['test_images']:,} images of the {card['data']})

| | accuracy |
|---|---|
| float (Keras) | {_percent(card['test_accuracy'])} |
| float, flip test-time augmentation | {_percent(card['tta_test_accuracy'])} |
| int8 TFLite ({card['int8_bytes']:,} bytes) | {_percent(card['int8_test_accuracy'])} |
| int8, flip test-time augmentation (two runs an image) | {_percent(card['int8_tta_test_accuracy'])} |
| seeds of the same recipe | {seeds_text} |

TensorFlow Lite Micro: {tflm}. int8 latency: {latency}.
Spot check the tests repeat: {spot['which']} ({spot['images']} images), float
{_percent(spot['accuracy'])}, int8 {_percent(spot['int8_accuracy'])}.

## Training

{card['epochs']} epochs in {card['train_seconds'] / 3600:.2f} hours on
{card['trained_on']['device']} ({card['trained_on']['backend']},
{card['trained_on']['precision']}); the final weights, never an epoch picked on the test
set. Recipe: {recipe}. Shipped {card['date'][:10]}.

## Data and limitations

Trained and measured on the {card['data']} of CIFAR-10. The offline JPEG copy (quality 75)
costs about 3 points against the original images, so this model measures about that
much lower there than on the original test set. Ten classes of 32x32 images: a photo of
another size is resized to 32x32 first and anything outside the ten classes still gets
one of them.

## Use

```python
import keras_resnet
model = keras_resnet.load_pretrained("{name}")   # checks every file's SHA-256 first
```

```bash
python -m keras_resnet.predict {name} cat.png          # float; {name}:int8 for the int8 file
python -m keras_resnet.export {name} --output my-export --data-dir data/cifar10-jpeg
```

The microcontroller sources are in `tflm/` (see README's "Deploying to a microcontroller").
"""
