"""The papers' comparisons, rerun as grid searches, with their published tables beside ours.

Grids from the seed papers: paper 000 Table 1 (five optimizers, Adam's
recipe otherwise: batch 64, lr 1e-3, cosine, 200 epochs) and Table 2 (Adam learning rates);
paper 003's batch size x learning rate x shuffle grid (Adam, lr / 3 every 20 epochs,
50 epochs). The papers report test accuracy after full training; a study reports
validation accuracy after `--epochs`, so compare orderings, not values.
"""

import dataclasses
import itertools


@dataclasses.dataclass(frozen=True)
class Study:
    """A grid over training dimensions of one variant, with the paper's results.

    Args:
        name: str. The `--study` name.
        paper: str. Seed number and table.
        variant: str. The paper's variant (the default base).
        grid: dict. Dimension name -> values, in the table's order.
        fixed: dict. Dimensions held at one value for every cell (the paper's setting).
        paper_results: dict. Tuple of grid values -> the paper's test accuracy (%).
    """

    name: str
    paper: str
    variant: str
    grid: dict
    fixed: dict
    paper_results: dict

    @property
    def size(self):
        """Number of grid cells."""
        size = 1
        for values in self.grid.values():
            size *= len(values)
        return size

    def ranges(self):
        """The search-space ranges: one choice per grid dimension, one value per fixed one."""
        ranges = {name: {"values": list(values)} for name, values in self.grid.items()}
        ranges.update({name: {"values": [value]} for name, value in self.fixed.items()})
        return ranges

    def cells(self):
        """Every grid cell as a tuple of values, in table order."""
        return list(itertools.product(*self.grid.values()))


_003_TEST = (72.05, 75.13, 80.83, 83.00, 81.27, 80.58, 88.30, 88.16, 87.87, 89.12, 85.20,
             86.51, 88.29, 87.24, 86.69, 86.20, 85.29, 85.30)
_003_CELLS = [(batch, rate, shuffle) for rate in (0.1, 0.01, 0.001) for batch in (100, 500, 1000)
              for shuffle in (True, False)]

STUDIES = {study.name: study for study in (
    Study("optimizers", "000, Table 1", "reduced",
          grid={"optimizer": ("sgd", "rmsprop", "adagrad", "adadelta", "adam")},
          fixed={"learning_rate": 1e-3, "batch_size": 64, "schedule": "cosine"},
          paper_results={("sgd",): 87.0, ("rmsprop",): 89.5, ("adadelta",): 77.7,
                         ("adagrad",): 86.5, ("adam",): 93.0}),
    Study("adam-lr", "000, Table 2", "reduced",
          grid={"learning_rate": (1e-4, 8e-4, 1e-3, 1.2e-3, 1e-2)},
          fixed={"optimizer": "adam", "batch_size": 64, "schedule": "cosine"},
          paper_results={(1e-4,): 68.6, (8e-4,): 90.7, (1e-3,): 93.0, (1.2e-3,): 84.6,
                         (1e-2,): 70.7}),
    Study("batch-lr-grid", "003, Section 6", "tiny",
          grid={"batch_size": (100, 500, 1000), "learning_rate": (0.1, 0.01, 0.001),
                "shuffle": (True, False)},
          fixed={"optimizer": "adam", "schedule": "step"},
          paper_results=dict(zip(_003_CELLS, _003_TEST))),
)}


def get_study(name):
    """Returns the `Study` called `name`.

    Raises:
        ValueError: for an unknown name.

    Example:

    >>> get_study("batch-lr-grid").size
    18
    """
    if name not in STUDIES:
        raise ValueError(f"Unknown study; expected one of {', '.join(STUDIES)}. "
                         f"Received: study={name!r}")
    return STUDIES[name]


def study_table(study, rows, epochs, steps_per_epoch):
    """Formats the study's markdown: every grid cell, ours next to the paper's.

    Args:
        study: `Study`.
        rows: list of `tuner.results.collect_trials` rows.
        epochs: int. Epochs each cell trained.
        steps_per_epoch: int or None. Step limit per epoch.

    Returns:
        str, markdown.
    """
    by_cell = {}
    for row in rows:
        key = tuple(_match(row["hyperparameters"].get(name), study.grid[name])
                    for name in study.grid)
        by_cell[key] = row
    names = list(study.grid)
    limit = f", {steps_per_epoch} steps per epoch" if steps_per_epoch else ""
    lines = [
        f"# Study `{study.name}`: paper {study.paper}",
        "",
        f"Base variant `{study.variant}`; fixed: "
        + ", ".join(f"{k}={v}" for k, v in study.fixed.items())
        + f". Ours: best validation accuracy after {epochs} epoch(s){limit}, on the held-out "
        "validation split. Paper: test accuracy after full training (not comparable in value; "
        "compare the ordering).",
        "",
        "| " + " | ".join(names) + " | ours: val_accuracy | trial | paper: test accuracy (%) |",
        "|" + "---|" * (len(names) + 3),
    ]
    ranked = sorted(by_cell, key=lambda k: -by_cell[k]["val_accuracy"])
    for cell in study.cells():
        row = by_cell.get(cell)
        ours = f"{row['val_accuracy']:.4f}" + (" (best)" if ranked and cell == ranked[0] else "") \
            if row else "not run"
        paper = study.paper_results.get(cell)
        lines.append("| " + " | ".join(str(v) for v in cell)
                     + f" | {ours} | {row['trial_id'] if row else ''} | "
                     + (f"{paper}" if paper is not None else "") + " |")
    return "\n".join(lines) + "\n"


def _match(value, choices):
    # keras-tuner may hand floats back with rounding; map to the grid's own value.
    for choice in choices:
        if choice == value or isinstance(choice, float) and isinstance(value, float) \
                and abs(choice - value) <= 1e-9 * max(1.0, abs(choice)):
            return choice
    return value
