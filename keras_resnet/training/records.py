"""The run's human-readable records: history.csv with learning curves, the summary text."""

import os

from keras_resnet import run_folder
from keras_resnet.files import atomic_path


def write_history(run_dir, history):
    """Writes `history.csv` (one row per epoch) and the learning-curve plots."""
    if history:
        run_folder.write_history(run_dir, history)
        plot_history(history, run_dir)


def plot_history(history, run_dir):
    """Saves accuracy, loss and learning rate against epoch as PNG files in `run_dir`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    epochs = [row["epoch"] for row in history]
    for name, keys in (("accuracy", ("accuracy", "val_accuracy")),
                       ("loss", ("loss", "val_loss")),
                       ("learning_rate", ("learning_rate",))):
        figure, axis = pyplot.subplots(figsize=(6, 4))
        for key in keys:
            if all(key in row for row in history):
                axis.plot(epochs, [row[key] for row in history], marker=".", label=key)
        axis.set_xlabel("epoch")
        axis.set_ylabel(name.replace("_", " "))
        if name == "learning_rate":
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
        axis.legend()
        figure.tight_layout()
        with atomic_path(os.path.join(run_dir, f"{name}.png")) as temporary:
            figure.savefig(temporary, dpi=100)
        pyplot.close(figure)


def summary_text(metrics):
    """Returns the one-screen summary printed at the end of a run."""
    lines = [
        f"run:               {metrics['run_dir']}",
        f"variant:           {metrics['variant']} ({metrics['trainable_params']:,} trainable "
        "parameters)",
        f"epochs:            {metrics['epochs_completed']}" + (
            f" (resumed from epoch {metrics['resumed_from_epoch']})"
            if metrics.get("resumed_from_epoch") else ""),
        f"test accuracy:     {metrics['test_accuracy']:.4f}   test loss: "
        f"{metrics['test_loss']:.4f}",
    ]
    if metrics.get("val_accuracy") is not None:
        lines.append(f"val accuracy:      {metrics['val_accuracy']:.4f}")
    if metrics.get("tta_test_accuracy") is not None:
        lines.append(f"test accuracy TTA: {metrics['tta_test_accuracy']:.4f} (flip)")
    speed = metrics.get("steady_images_per_second") or metrics["images_per_second"]
    compile_seconds = metrics.get("compile_seconds")
    lines += [
        f"train time:        {metrics['train_seconds']:.1f} s"
        + (f" (first step, with compilation: {compile_seconds:.1f} s)"
           if compile_seconds is not None else ""),
        f"speed:             {speed:.0f} images/s"
        + (" after the first epoch" if metrics.get("steady_images_per_second") else ""),
        f"numerics:          {metrics['precision']}, jit={metrics['jit']}, "
        f"{metrics['backend']} on {metrics['device']}",
    ]
    width = max(len(line) for line in lines)
    return "\n".join(["=" * width, *lines, "=" * width])
