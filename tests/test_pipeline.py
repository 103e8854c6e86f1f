import numpy
import pytest
import spacy
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import SGD, Adam, ConfigValidationError

from spacy_mlbert.pipeline import MAX_AUTO_POS_WEIGHT
from util import TRAIN_DATA, make_examples, make_nlp, transformer_config

LABELS = ("positive", "negative", "useful", "slow")


def test_pipeline_add_pipe_defaults():
    nlp = spacy.blank("xx")
    textcat = nlp.add_pipe("mlbert_textcat")
    cfg = nlp.config["components"]["mlbert_textcat"]
    assert cfg["threshold"] == 0.5 and cfg["thresholds"] == {} and cfg["pos_weight"] is None
    assert cfg["model"]["@architectures"] == "spacy-mlbert.MultiLabelClassifier.v2"
    assert cfg["model"]["normalize"] is True
    assert cfg["model"]["tok2vec"]["@architectures"] == "spacy-mlbert.WordpieceListener.v2"
    assert cfg["model"]["tok2vec"]["pooling"] == "mean"
    assert textcat.model.attrs["multi_label"] is True


@pytest.mark.parametrize(
    "config,match",
    [
        ({"threshold": "high"}, None),
        ({"threshold": 1.5}, "E002"),
        ({"thresholds": {"positive": -0.1}}, "E002"),
        ({"pos_weight": "balanced"}, "E005"),
        ({"pos_weight": {"positive": 0}}, "E005"),
        ({"model": {"@architectures": "spacy-mlbert.MultiLabelClassifier.v2",
                    "tok2vec": {"@architectures": "spacy-mlbert.WordpieceListener.v1",
                                    "pooling": "max"}}}, "E001"),
    ],
)
def test_pipeline_rejects_bad_config(config, match):
    nlp = spacy.blank("xx")
    error = ConfigValidationError if match is None else ValueError
    with pytest.raises(error, match=match):
        nlp.add_pipe("mlbert_textcat", config=config)


def test_pipeline_initialize_infers_labels(tiny_xlmr_dir):
    nlp = make_nlp(tiny_xlmr_dir)
    nlp.initialize(get_examples=lambda: make_examples(nlp))
    assert nlp.get_pipe("mlbert_textcat").labels == LABELS


def test_pipeline_initialize_takes_labels(tiny_xlmr_dir):
    nlp = make_nlp(tiny_xlmr_dir)
    # as written by `spacy init labels` into [initialize.components]
    nlp.config["initialize"]["components"]["mlbert_textcat"] = {"labels": ["slow", "positive"]}
    nlp.initialize(get_examples=lambda: make_examples(nlp))
    assert nlp.get_pipe("mlbert_textcat").labels == ("slow", "positive")


def test_pipeline_rejects_non_binary_cats(tiny_xlmr_dir):
    nlp = make_nlp(tiny_xlmr_dir)
    data = TRAIN_DATA[:2] + [("Bad value", {"positive": 2.0})]
    with pytest.raises(ValueError, match=r"E004.*2\.0.*positive.*example 2"):
        nlp.initialize(get_examples=lambda: make_examples(nlp, data))


def test_pipeline_requires_labels(tiny_xlmr_dir):
    nlp = make_nlp(tiny_xlmr_dir)
    examples = [Example.from_dict(nlp.make_doc("No cats here"), {})]
    with pytest.raises(ValueError, match="E007"):
        nlp.initialize(get_examples=lambda: examples)


def test_pipeline_rejects_thresholds_for_unknown_labels(tiny_xlmr_dir):
    nlp = make_nlp(tiny_xlmr_dir, textcat_config={"thresholds": {"sarcasm": 0.3}})
    with pytest.raises(ValueError, match="E003.*sarcasm"):
        nlp.initialize(get_examples=lambda: make_examples(nlp))


def test_pipeline_rejects_pos_weight_for_unknown_labels(tiny_xlmr_dir):
    nlp = make_nlp(tiny_xlmr_dir, textcat_config={"pos_weight": {"sarcasm": 2.0}})
    with pytest.raises(ValueError, match="E006.*sarcasm"):
        nlp.initialize(get_examples=lambda: make_examples(nlp))


def test_pipeline_overfits_multilingual_examples(tiny_xlmr_dir, tiny_bert_dir):
    """Both encoder families learn the training set, Chinese and Arabic included."""
    for encoder_dir in (tiny_xlmr_dir, tiny_bert_dir):
        fix_random_seed(0)
        nlp = make_nlp(encoder_dir, pooling="mean")
        examples = make_examples(nlp)
        optimizer = nlp.initialize(get_examples=lambda: examples)
        # 60 updates, then up to 100 more in rounds of 20 until every label is
        # right: the last few probabilities can sit just under 0.5 at 60,
        # depending on float summation order (thread count, earlier tests).
        for step in range(1, 161):
            losses = {}
            nlp.update(examples, sgd=optimizer, losses=losses)
            if step >= 60 and step % 20 == 0:
                scores = nlp.evaluate(examples)
                if losses["mlbert_textcat"] < 0.05 and scores["cats_micro_f"] == 1.0:
                    break
        assert losses["mlbert_textcat"] < 0.05, encoder_dir.name
        assert scores["cats_micro_f"] == 1.0, encoder_dir.name
        assert scores["cats_macro_f"] == 1.0, encoder_dir.name
        for text, cats in TRAIN_DATA:
            doc = nlp(text)
            assert doc._.mlbert_labels == [label for label in LABELS if cats[label] == 1.0]


def test_pipeline_pipe_and_call_agree(trained_nlp):
    texts = [text for text, _ in TRAIN_DATA] + ["", "  ", "😀😀", "a", "Mixed 中文 text عربي"]
    piped = list(trained_nlp.pipe(texts, batch_size=3))
    for text, doc in zip(texts, piped):
        single = trained_nlp(text)
        assert set(doc.cats) == set(LABELS)
        assert doc.cats == pytest.approx(single.cats, abs=1e-5)
        assert all(0.0 <= p <= 1.0 for p in doc.cats.values())


def test_pipeline_empty_doc_gets_bias_probabilities(trained_nlp):
    """An empty doc pools to the zero vector, which the layer norm maps to
    its learned bias: the probabilities come from the biases alone."""
    textcat = trained_nlp.get_pipe("mlbert_textcat")
    layer_norm, output_layer = textcat.model.layers[1], textcat.model.get_ref("output_layer")
    assert layer_norm.name == "layernorm"
    logits = output_layer.get_param("W") @ layer_norm.get_param("b") + output_layer.get_param("b")
    expected = 1.0 / (1.0 + numpy.exp(-logits))
    doc = trained_nlp("")
    assert [doc.cats[label] for label in LABELS] == pytest.approx(expected.tolist(), abs=1e-6)


def test_pipeline_unknown_label_gets_no_gradient(tiny_xlmr_dir):
    """A label absent from every example's cats is masked: its weights don't move."""
    fix_random_seed(0)
    nlp = make_nlp(tiny_xlmr_dir)
    data = [(text, {k: v for k, v in cats.items() if k != "slow"}) for text, cats in TRAIN_DATA]
    examples = make_examples(nlp, data)
    textcat = nlp.get_pipe("mlbert_textcat")
    nlp.initialize(get_examples=lambda: examples)
    textcat.add_label("slow")  # grows the trained output layer
    slow = textcat.labels.index("slow")
    output_layer = textcat.model.get_ref("output_layer")
    W_before = output_layer.get_param("W")[slow].copy()
    b_before = float(output_layer.get_param("b")[slow])
    optimizer = Adam(0.01, L2=0.0)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    numpy.testing.assert_array_equal(output_layer.get_param("W")[slow], W_before)
    assert float(output_layer.get_param("b")[slow]) == b_before
    logits = textcat.model.predict([nlp(eg.reference.text) for eg in examples])
    _, d_scores = textcat.get_loss(examples, logits)
    assert numpy.all(d_scores[:, slow] == 0.0)
    assert numpy.any(d_scores[:, textcat.labels.index("positive")] != 0.0)


def _no_dropout_nlp(encoder_dir):
    """make_nlp's pipeline without any dropout, the encoder's own included:
    what a document contributes to a step then depends on that document only."""
    nlp = spacy.blank("xx")
    config = transformer_config(encoder_dir)
    config["model"]["transformer_config"] = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    nlp.add_pipe("transformer", config=config)
    nlp.add_pipe("mlbert_textcat")
    return nlp


def test_pipeline_label_unknown_for_some_docs_of_a_batch_is_masked_there(tiny_xlmr_dir):
    """'slow' annotated for the first docs of the batch and not for the last:
    the unknown cells get no loss and no gradient, so what the unannotated
    docs say moves nothing of 'slow' (its output weights take one step the
    same whatever their texts), while they still train the other labels."""
    known = [(text, cats) for text, cats in TRAIN_DATA[:4]]
    unknown_a = [(text, {k: v for k, v in cats.items() if k != "slow"}) for text, cats in TRAIN_DATA[4:]]
    unknown_b = [(text, cats) for (text, _), (_, cats) in zip(TRAIN_DATA[1:3], unknown_a)]
    steps = []
    for unknown in (unknown_a, unknown_b):
        fix_random_seed(0)
        nlp = _no_dropout_nlp(tiny_xlmr_dir)
        examples = make_examples(nlp, known + unknown)
        nlp.initialize(get_examples=lambda: make_examples(nlp, TRAIN_DATA))
        textcat = nlp.get_pipe("mlbert_textcat")
        slow = textcat.labels.index("slow")
        # the loss: zero gradient at the unknown cells only, and their logits do not count
        logits = textcat.model.predict([eg.predicted for eg in examples])
        loss, d_logits = textcat.get_loss(examples, logits)
        assert numpy.all(d_logits[4:, slow] == 0.0) and numpy.all(d_logits[:4, slow] != 0.0)
        assert numpy.all(d_logits[4:, :slow] != 0.0)
        changed = logits.copy()
        changed[4:, slow] += 5.0
        assert textcat.get_loss(examples, changed)[0] == loss
        # one plain gradient step (no clipping, no momentum)
        output_layer = textcat.model.get_ref("output_layer")
        before = output_layer.get_param("W").copy()
        nlp.update(examples, drop=0.0, sgd=SGD(0.5, grad_clip=0.0, use_averages=False))
        after = output_layer.get_param("W")
        assert not numpy.allclose(after[slow], before[slow])  # the annotated docs train it
        steps.append((before, after.copy(), output_layer.get_param("b").copy()))
    (before_a, after_a, b_a), (before_b, after_b, b_b) = steps
    numpy.testing.assert_array_equal(before_a, before_b)
    numpy.testing.assert_allclose(after_a[slow], after_b[slow], rtol=1e-5, atol=1e-7)
    assert b_a[slow] == pytest.approx(b_b[slow], rel=1e-5, abs=1e-7)
    # the other labels learn from the unannotated docs' texts
    assert not numpy.allclose(after_a[textcat.labels.index("positive")], after_b[textcat.labels.index("positive")])


def test_pipeline_pos_weight_auto_from_examples(trained_nlp):
    textcat = trained_nlp.get_pipe("mlbert_textcat")
    # 3 positives and 3 negatives of every label except useful (2 of 6)
    assert textcat.pos_weights == {"positive": 1.0, "negative": 1.0, "useful": 2.0, "slow": 1.0}


def test_pipeline_pos_weight_scales_positive_gradient(tiny_xlmr_dir):
    nlp = make_nlp(tiny_xlmr_dir, textcat_config={"pos_weight": {"useful": 4.0}})
    examples = make_examples(nlp)
    nlp.initialize(get_examples=lambda: examples)
    textcat = nlp.get_pipe("mlbert_textcat")
    logits = numpy.zeros((len(examples), len(LABELS)), dtype="f")
    _, d_weighted = textcat.get_loss(examples, logits)
    textcat.cfg["pos_weight"] = None
    _, d_plain = textcat.get_loss(examples, logits)
    useful = LABELS.index("useful")
    truths = numpy.asarray([cats["useful"] for _, cats in TRAIN_DATA])
    numpy.testing.assert_allclose(d_weighted[truths == 1, useful], 4 * d_plain[truths == 1, useful])
    numpy.testing.assert_allclose(d_weighted[truths == 0, useful], d_plain[truths == 0, useful])


def test_pipeline_pos_weight_auto_is_capped_and_warns_without_positives(tiny_xlmr_dir):
    data = [(f"text {i}", {"rare": 1.0 if i == 0 else 0.0, "never": 0.0}) for i in range(150)]
    nlp = make_nlp(tiny_xlmr_dir, textcat_config={"pos_weight": "auto"})
    with pytest.warns(UserWarning, match="W002.*never"):
        nlp.initialize(get_examples=lambda: make_examples(nlp, data))
    weights = nlp.get_pipe("mlbert_textcat").pos_weights
    assert weights == {"rare": MAX_AUTO_POS_WEIGHT, "never": 1.0}


def test_pipeline_thresholds_decide_labels(trained_nlp):
    textcat = trained_nlp.get_pipe("mlbert_textcat")
    text = TRAIN_DATA[0][0]
    before = trained_nlp(text)
    assert "positive" in before._.mlbert_labels
    textcat.set_thresholds({"positive": 1.0})
    try:
        after = trained_nlp(text)
        assert after.cats == before.cats  # thresholds never change probabilities
        assert "positive" not in after._.mlbert_labels
        assert textcat.thresholds["positive"] == 1.0 and textcat.thresholds["useful"] == 0.5
        with pytest.raises(ValueError, match="E002"):
            textcat.set_thresholds({"positive": 2})
        with pytest.raises(ValueError, match="E003"):
            textcat.set_thresholds({"sarcasm": 0.5})
    finally:
        textcat.set_thresholds({"positive": 0.5})


def test_pipeline_scorer_uses_thresholds(trained_nlp):
    examples = make_examples(trained_nlp)
    textcat = trained_nlp.get_pipe("mlbert_textcat")
    assert trained_nlp.evaluate(examples)["cats_micro_r"] > 0.5
    # a global threshold given at evaluation time applies to every label
    assert trained_nlp.evaluate(examples, scorer_cfg={"threshold": 1.0})["cats_micro_r"] == 0.0
    textcat.set_thresholds({label: 1.0 for label in LABELS[:2]})
    try:
        per_type = trained_nlp.evaluate(examples)["cats_f_per_type"]
        assert per_type["positive"]["r"] == 0.0 and per_type["useful"]["r"] > 0.0
    finally:
        textcat.set_thresholds({label: 0.5 for label in LABELS[:2]})


def test_pipeline_scores_skip_unknown_gold_labels(trained_nlp):
    data = [(text, {k: v for k, v in cats.items() if k != "slow"}) for text, cats in TRAIN_DATA]
    scores = trained_nlp.evaluate(make_examples(trained_nlp, data))
    assert "slow" not in scores["cats_f_per_type"]
    assert set(scores["cats_f_per_type"]) == {"positive", "negative", "useful"}
