"""Learning-rate schedules sized to the training data.

thinc's ``warmup_linear.v1`` needs ``total_steps`` written into the config. A
fixed number is wrong for every corpus but one: too small and the rate reaches
zero while training goes on (nothing more is learned), too large and it never
decays. This schedule counts the training documents instead, so that the
linear decay ends with the last epoch whatever the corpus size.

The shipped configs give it ``${training.max_epochs}``,
``${training.batcher.size}`` and ``${paths.train}``. `spacy train` resolves
them, but spaCy builds the optimizer from ``nlp.config`` alone, variables
unresolved, in ``nlp.initialize()`` and ``nlp.resume_training()`` without
``sgd`` (``spacy debug data`` calls the first): there the schedule gets the
variables' text and cannot know the length of the run. It then gives the
peak rate from the first step on (warning W020) instead of failing: a
training loop written for ``nlp.resume_training()`` calls ``nlp.update`` but
seldom ``optimizer.step_schedules()``, and a warm-up from zero would leave
such a loop at a rate of zero.
"""
import math
import re
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from spacy.tokens import DocBin
from spacy.util import registry
from wasabi import msg

from .errors import Errors, Warnings


def count_docbin_docs(path: Union[str, Path]) -> int:
    """Documents in a ``.spacy`` file, or in every ``.spacy`` file under a
    folder (the two forms spaCy's ``Corpus`` reads)."""
    path = Path(path)
    files = sorted(path.rglob("*.spacy")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise ValueError(Errors.E099.format(path=path))
    return sum(_count_file(str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)


@lru_cache(maxsize=32)
def _count_file(path: str, mtime_ns: int, size: int) -> int:
    # `spacy train` resolves the [training] block more than once (initialize,
    # then train): read each unchanged file once. mtime and size are part of
    # the key so that a rewritten file is counted again.
    return len(DocBin().from_disk(path))


def steps_for(n_docs: int, batch_size: int, epochs: int) -> int:
    """Optimizer steps of ``epochs`` passes over ``n_docs`` in batches of
    ``batch_size`` documents (``spacy.batch_by_sequence.v1``)."""
    return math.ceil(n_docs / max(1, batch_size)) * max(1, epochs)


@registry.schedules("spacy-mlbert.warmup_linear_epochs.v1")
def warmup_linear_epochs(
    initial_rate: float,
    warmup_steps: int,
    epochs: Union[int, str],
    batch_size: Union[int, str],
    train_path: Optional[Union[Path, str]] = None,
    total_steps: int = 0,
) -> Iterable[float]:
    """Linear warm-up over ``warmup_steps``, then a linear decay that reaches
    zero at the end of ``epochs`` passes over the training corpus.

    initial_rate (float): Peak learning rate, reached after the warm-up.
    warmup_steps (int): Steps of the linear warm-up from zero.
    epochs (Union[int, str]): Passes over the corpus (usually
        ``${training.max_epochs}``; a string only as an unresolved variable).
    batch_size (Union[int, str]): Documents per batch (usually
        ``${training.batcher.size}``).
    train_path (Optional[Union[Path, str]]): The training DocBin (``${paths.train}``),
        counted before any reader filter (a ``langs`` filter makes the decay
        end later than the run, never earlier).
    total_steps (int): Set it to fix the decay's length yourself; 0 derives it.
    RETURNS (Iterable[float]): The learning rate of each step.
    """
    settings = {"epochs": epochs, "batch_size": batch_size, "train_path": train_path}
    unresolved = [name for name, value in settings.items() if _is_variable(value)]
    for name in ("epochs", "batch_size"):
        if isinstance(settings[name], str) and name not in unresolved:
            if not settings[name].strip().isdigit():
                raise ValueError(Errors.E110.format(name=name, value=settings[name]))
    if total_steps <= 0 and unresolved:
        variables = ", ".join(f"{name} = {settings[name]}" for name in unresolved)
        warnings.warn(Warnings.W020.format(variables=variables, rate=initial_rate))
        return _warmup_linear(initial_rate, 0, 0)
    if total_steps <= 0 and train_path is not None:
        total_steps = steps_for(count_docbin_docs(train_path), int(batch_size), int(epochs))
    if total_steps <= 0:
        # No corpus to count (e.g. `spacy debug config` without paths.train):
        # keep the peak rate after the warm-up rather than guess a length.
        msg.warn(Warnings.W003)
    return _warmup_linear(initial_rate, warmup_steps, total_steps)


_VARIABLE = re.compile(r"\$\{[^{}]+\}")


def _is_variable(value: object) -> bool:
    """Whether a setting is the text of an unresolved config variable, e.g.
    ``"${training.max_epochs}"`` (a Path too: pydantic makes one of it)."""
    return isinstance(value, (str, Path)) and _VARIABLE.fullmatch(str(value)) is not None


def _warmup_linear(initial_rate: float, warmup_steps: int, total_steps: int) -> Iterator[float]:
    step = 0
    while True:
        if step < warmup_steps:
            factor = step / max(1, warmup_steps)
        elif total_steps <= 0:
            factor = 1.0
        else:
            factor = max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
        yield factor * initial_rate
        step += 1
