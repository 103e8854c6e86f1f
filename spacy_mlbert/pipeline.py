"""The ``mlbert_textcat`` component: multi-label classification on a transformer.

It differs from spaCy's ``textcat_multilabel`` where multilingual multi-label
data needs it to:
- the model returns logits and the loss is binary cross-entropy on them
  (spaCy's is squared error on probabilities), optionally with ``pos_weight``;
- a label absent from a training example's ``doc.cats`` is unknown: no loss,
  no gradient, and it is left out of the scores too;
- every label has its own decision threshold, stored with the component;
- ``doc.cats`` can be calibrated per label (``set_calibration``), also stored;
- models are selected by macro-F1.
"""
import math
import warnings
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union


from spacy.language import Language
from spacy.pipeline.textcat_multilabel import MultiLabel_TextCategorizer
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model
from thinc.types import Floats2d

from .calibration import calibration_arrays, check_calibration
from .errors import Errors, Warnings
from .extensions import install_extensions
from .forking import install_fork_guard
from .loss import LossFunction, masked_bce_with_logits

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy-mlbert.MultiLabelClassifier.v2"
normalize = true
dropout = 0.1
nO = null

[model.tok2vec]
@architectures = "spacy-mlbert.WordpieceListener.v2"
upstream = "*"
pooling = "mean"
grad_factor = 1.0
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]

# Thresholds and weights are kept to 6 decimals: srsly's JSON round trip is
# not exact for every float, and a saved model must decide exactly as before.
PRECISION = 6

# Cap on "auto" pos_weight: a label seen once in 10,000 texts would otherwise
# get a weight that swamps every other label's gradient.
MAX_AUTO_POS_WEIGHT = 100.0

PosWeight = Optional[Union[str, Dict[str, float]]]


@Language.factory(
    "mlbert_textcat",
    assigns=["doc.cats", "doc._.mlbert_labels"],
    default_config={
        "model": DEFAULT_MODEL,
        "threshold": 0.5,
        "thresholds": {},
        "pos_weight": None,
        "loss": {"@losses": "spacy-mlbert.bce_loss.v1"},
        "scorer": {"@scorers": "spacy-mlbert.multilabel_scorer.v1"},
    },
    default_score_weights={
        "cats_macro_f": 1.0,
        "cats_micro_f": None,
        "cats_macro_auc": None,
        "cats_micro_p": None,
        "cats_micro_r": None,
        "cats_macro_p": None,
        "cats_macro_r": None,
        "cats_score": None,
        "cats_f_per_type": None,
    },
)
def make_mlbert_textcat(
    nlp: Language,
    name: str,
    model: Model[List[Doc], Floats2d],
    threshold: float,
    thresholds: Dict[str, float],
    pos_weight: PosWeight,
    loss: Optional[LossFunction],
    scorer: Optional[Callable],
) -> "MultiLabelBertCategorizer":
    """Create a multi-label classifier on a (multilingual) transformer.

    model (Model[List[Doc], Floats2d]): Returns one logit per label.
    threshold (float): Decision threshold for labels without their own.
    thresholds (Dict[str, float]): Per-label decision thresholds.
    pos_weight (Optional[Union[str, Dict[str, float]]]): Weight of the positive
        term of each label's loss: null (1.0), "auto" (negatives / positives
        in the training examples, computed at initialize) or {label: weight}.
    loss (Optional[LossFunction]): The training loss on the logits, e.g.
        "spacy-mlbert.bce_loss.v1" (default) or "spacy-mlbert.asymmetric_loss.v1".
    scorer (Optional[Callable]): The scoring method.
    """
    return MultiLabelBertCategorizer(
        nlp.vocab,
        model,
        name,
        threshold=threshold,
        thresholds=thresholds,
        pos_weight=pos_weight,
        loss=loss,
        scorer=scorer,
    )


class MultiLabelBertCategorizer(MultiLabel_TextCategorizer):
    """Assign any subset of its labels to a document.

    ``doc.cats`` holds a probability per label (calibrated where the
    component has a calibration); ``doc._.mlbert_labels`` the labels whose
    probability reaches the label's threshold.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "mlbert_textcat",
        *,
        threshold: float = 0.5,
        thresholds: Optional[Mapping[str, float]] = None,
        pos_weight: PosWeight = None,
        loss: Optional[LossFunction] = None,
        scorer: Optional[Callable] = None,
    ) -> None:
        thresholds = {} if thresholds is None else thresholds
        super().__init__(vocab, model, name, threshold=threshold, scorer=scorer)
        _check_threshold_values({"<default>": threshold})
        _check_threshold_values(thresholds)
        _check_pos_weight_value(pos_weight)
        self.cfg["thresholds"] = dict(thresholds)
        self.cfg["pos_weight"] = dict(pos_weight) if isinstance(pos_weight, Mapping) else pos_weight
        self.loss = loss if loss is not None else masked_bce_with_logits
        self._threshold_as_loaded = threshold
        self.cfg["calibration"] = {}  # {label: [a, b]}; saved with cfg, none by default
        install_extensions()
        install_fork_guard()  # nlp.pipe(n_process=2) forks after torch: forking.py

    # --- thresholds -------------------------------------------------------

    @property
    def thresholds(self) -> Dict[str, float]:
        """The decision threshold of every label (its own, or the default)."""
        own = self.cfg.get("thresholds", {})
        default = self.cfg["threshold"]
        return {label: round(float(own.get(label, default)), PRECISION) for label in self.labels}

    def set_thresholds(self, thresholds: Mapping[str, float]) -> None:
        """Set per-label decision thresholds; they are saved with the component.

        thresholds (Mapping[str, float]): {label: threshold in [0, 1]}.
        """
        _check_threshold_values(thresholds)
        self._check_known_labels(thresholds, Errors.E003)
        self.cfg["thresholds"] = {**self.cfg.get("thresholds", {}), **thresholds}

    # --- calibration ------------------------------------------------------

    @property
    def calibration(self) -> Dict[str, List[float]]:
        """[a, b] of every label: doc.cats[label] = sigmoid(a * logit + b);
        [1.0, 0.0] (the raw sigmoid) where no calibration is set."""
        own = self.cfg.get("calibration") or {}
        # rounded as set: the JSON round trip of cfg can be one ulp off
        return {label: [round(float(v), PRECISION) for v in own.get(label, (1.0, 0.0))] for label in self.labels}

    def set_calibration(self, calibration: Mapping[str, Sequence[float]]) -> None:
        """Replace the calibration; it is saved with the component. Labels
        not named get none; ``{}`` removes it. See spacy_mlbert.calibration.

        calibration (Mapping[str, Sequence[float]]): {label: [a, b]}, a > 0.
        """
        checked = check_calibration(calibration, PRECISION)
        self._check_known_labels(checked, Errors.E134)
        self.cfg["calibration"] = checked

    # --- pos_weight -------------------------------------------------------

    @property
    def pos_weights(self) -> Dict[str, float]:
        """The positive-term weight of every label's loss (1.0 where unset)."""
        values = self.cfg.get("pos_weight")
        values = values if isinstance(values, Mapping) else {}
        return {label: round(float(values.get(label, 1.0)), PRECISION) for label in self.labels}

    # --- prediction -------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> Floats2d:
        """Probabilities, shape (n_docs, n_labels), calibrated where the
        component has a calibration. Empty documents pool to the zero vector,
        so they get the sigmoid of the output bias."""
        docs = list(docs)
        ops = self.model.ops
        if not docs:
            return ops.alloc2f(0, len(self.labels))
        logits = ops.asarray2f(self.model.predict(docs))
        if self.cfg.get("calibration"):
            scale, shift = calibration_arrays(self.calibration, self.labels)
            logits = logits * ops.asarray1f(scale) + ops.asarray1f(shift)
        return ops.sigmoid(logits)

    def set_annotations(self, docs: Iterable[Doc], scores: Floats2d) -> None:
        thresholds = [self.thresholds[label] for label in self.labels]
        scores = self.model.ops.to_numpy(scores)
        for doc, row in zip(docs, scores):
            chosen = []
            for label, threshold, score in zip(self.labels, thresholds, row):
                doc.cats[label] = float(score)
                if score >= threshold:
                    chosen.append(label)
            doc._.mlbert_labels = chosen

    # --- training ---------------------------------------------------------

    def get_loss(self, examples: Iterable[Example], scores: Floats2d) -> Tuple[float, Floats2d]:
        """The loss (binary cross-entropy unless the config chooses another)
        on the logits over the annotated labels.

        scores (Floats2d): Logits from the model (not probabilities).
        """
        validate_examples(examples, "MultiLabelBertCategorizer.get_loss")
        self._validate_categories(examples)
        ops = self.model.ops
        truths, known = self._examples_to_truth(examples)
        pos_weight = ops.asarray1f([self.pos_weights[label] for label in self.labels])
        return self.loss(
            ops, ops.asarray2f(scores), ops.asarray2f(truths), ops.asarray2f(known), pos_weight
        )

    def initialize(  # type: ignore[override]
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Iterable[str]] = None,
    ) -> None:
        """Infer labels (or take ``labels``), compute ``pos_weight="auto"``,
        check thresholds and initialize the model on a sample.

        get_examples (Callable[[], Iterable[Example]]): The training examples.
        nlp (Language): The pipeline the component belongs to.
        labels (Optional[Iterable[str]]): The labels, e.g. from `spacy init labels`.
        """
        validate_get_examples(get_examples, "MultiLabelBertCategorizer.initialize")
        counts = self._count_labels(get_examples())
        for label in labels if labels is not None else counts:
            self.add_label(label)
        if not self.labels:
            raise ValueError(Errors.E007.format(name=self.name))
        self._check_known_labels(self.cfg.get("thresholds", {}), Errors.E003)
        self._resolve_pos_weight(counts)
        subbatch = list(islice(get_examples(), 10))
        truths, _ = self._examples_to_truth(subbatch)
        self.model.initialize(X=[eg.reference for eg in subbatch], Y=truths)

    def _count_labels(self, examples: Iterable[Example]) -> Dict[str, List[int]]:
        """[positives, annotated] per label, validating every value on the way."""
        counts: Dict[str, List[int]] = {}
        for i, eg in enumerate(examples):
            self._validate_cats(eg, i)
            for label, value in eg.reference.cats.items():
                entry = counts.setdefault(label, [0, 0])
                entry[0] += int(value == 1.0)
                entry[1] += 1
        return counts

    def _resolve_pos_weight(self, counts: Mapping[str, List[int]]) -> None:
        setting = self.cfg.get("pos_weight")
        if setting == "auto":
            weights = {}
            for label in self.labels:
                positives, annotated = counts.get(label, [0, 0])
                if positives == 0:
                    warnings.warn(Warnings.W002.format(label=label, count=annotated))
                    weights[label] = 1.0
                else:
                    weights[label] = min((annotated - positives) / positives, MAX_AUTO_POS_WEIGHT)
                    weights[label] = max(weights[label], 1e-3)
            self.cfg["pos_weight"] = weights
        elif isinstance(setting, Mapping):
            self._check_known_labels(setting, Errors.E006)

    def _validate_categories(self, examples: Iterable[Example]) -> None:
        for i, eg in enumerate(examples):
            self._validate_cats(eg, i)

    @staticmethod
    def _validate_cats(eg: Example, index: int) -> None:
        for label, value in eg.reference.cats.items():
            if isinstance(value, bool) or value not in (0, 1) or value != value:
                snippet = eg.reference.text[:40]
                raise ValueError(
                    Errors.E004.format(
                        value=value, label=label, where=f" of example {index} ('{snippet}')"
                    )
                )

    def _check_known_labels(self, mapping: Mapping[str, Any], error: str) -> None:
        unknown = sorted(set(mapping) - set(self.labels))
        if unknown:
            raise ValueError(
                error.format(labels=unknown, name=self.name, known=list(self.labels))
            )

    # --- scoring ----------------------------------------------------------

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        """Score with the per-label thresholds. An explicit ``threshold``
        without ``thresholds`` (e.g. ``nlp.evaluate(scorer_cfg={"threshold": 0.9})``)
        applies to every label."""
        validate_examples(examples, "MultiLabelBertCategorizer.score")
        if "threshold" in kwargs and "thresholds" not in kwargs:
            kwargs["thresholds"] = {}
        else:
            self._check_default_threshold_applies()
            kwargs.setdefault("thresholds", self.thresholds)
            kwargs.setdefault("threshold", self.cfg["threshold"])
        kwargs["labels"] = self.labels
        return self.scorer(examples, **kwargs)

    def _check_default_threshold_applies(self) -> None:
        """Refuse a default threshold changed after loading that applies to no
        label: every label has its own (e.g. `spacy find-threshold ...
        threshold` on a pipeline from tune-thresholds: every trial would
        score the same)."""
        own = self.cfg.get("thresholds", {})
        changed = self.cfg["threshold"] != self._threshold_as_loaded
        if changed and self.labels and all(label in own for label in self.labels):
            raise ValueError(
                Errors.E111.format(
                    name=self.name, value=self.cfg["threshold"], loaded=self._threshold_as_loaded
                )
            )

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "MultiLabelBertCategorizer":
        super().from_bytes(bytes_data, exclude=exclude)
        self._threshold_as_loaded = self.cfg["threshold"]
        return self

    def from_disk(self, path: Any, *, exclude: Iterable[str] = tuple()) -> "MultiLabelBertCategorizer":
        super().from_disk(path, exclude=exclude)
        self._threshold_as_loaded = self.cfg["threshold"]
        return self


def _check_threshold_values(thresholds: Mapping[str, float]) -> None:
    for label, value in thresholds.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
            raise ValueError(Errors.E002.format(label=label, value=value))


def _check_pos_weight_value(pos_weight: PosWeight) -> None:
    if pos_weight is None or pos_weight == "auto":
        return
    if isinstance(pos_weight, Mapping) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        for v in pos_weight.values()
    ):
        return
    raise ValueError(Errors.E005.format(value=pos_weight))
