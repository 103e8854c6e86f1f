"""Add the logits of several models that read the same documents."""
from typing import Any, Callable, List, Optional, Tuple

from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats2d


def sum_logits(*layers: Model[List[Doc], Floats2d]) -> Model[List[Doc], Floats2d]:
    """Sum the (n_docs, n_labels) outputs of ``layers``, each given the docs.

    thinc's ``add`` would do the sum, but its initialisation asks the width of
    its input, which a list of Docs has not.
    """
    return Model("sum_logits", _forward, init=_init, layers=list(layers), dims={"nO": None})


def _forward(
    model: Model[List[Doc], Floats2d], docs: List[Doc], is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], Any]]:
    outputs, callbacks = zip(*(layer(docs, is_train) for layer in model.layers))
    total = outputs[0]
    for output in outputs[1:]:
        total = total + model.ops.asarray2f(output)

    def backprop(d_total: Floats2d) -> Any:
        # every branch gets the full gradient of the sum; docs take none
        results = [callback(d_total) for callback in callbacks]
        return results[0]

    return total, backprop


def _init(
    model: Model[List[Doc], Floats2d],
    X: Optional[List[Doc]] = None,
    Y: Optional[Floats2d] = None,
) -> None:
    for layer in model.layers:
        layer.initialize(X=X, Y=Y)
    model.set_dim("nO", model.layers[0].get_dim("nO"), force=True)
