"""A fixed text before every window, added by the encoder's own tokenizer.

Some encoders were trained with an instruction before each input: the e5
models with ``query: `` or ``passage: ``. Here the prefix goes into the fast
tokenizer's post-processor, beside ``<s>`` and ``</s>``: its wordpieces are
special tokens to the rest of the pipeline. They have no characters in the
text (offsets (0, 0)), so spaCy tokens never align to them; they take part in
attention and in the mean pooling of the wordpieces, as in the encoder's own
training. ``num_special_tokens_to_add`` counts them, so the wordpiece windows
shrink to leave them room. The tokenizer saves the post-processor in its
``tokenizer.json``: a saved pipeline keeps its prefix.
"""
import json
from typing import List, Tuple

from ..errors import Errors

# Names of the template's parts (they must not contain ':' or '$').
_BEFORE, _PREFIX, _AFTER = "MLBERT_BEFORE", "MLBERT_PREFIX", "MLBERT_AFTER"


def add_input_prefix(tokenizer, prefix: str) -> None:
    """Make ``tokenizer`` put the wordpieces of ``prefix`` right after its
    opening special token(s) in every single-sequence encoding.

    tokenizer (PreTrainedTokenizerFast): The encoder's tokenizer, changed in place.
    prefix (str): The text to put first, e.g. "query: ". "" changes nothing.
    """
    if not prefix:
        return
    from tokenizers.processors import TemplateProcessing

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(Errors.E152.format(tokenizer=type(tokenizer).__name__))
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    existing = input_prefix_ids(tokenizer)
    if existing == prefix_ids:
        return  # initialized before, or loaded with it
    if existing:
        raise ValueError(Errors.E153.format(prefix=prefix, existing=tokenizer.decode(existing)))
    before, after = _special_ids_around(tokenizer)
    parts: List[Tuple[str, List[int]]] = [(_BEFORE, before), (_PREFIX, prefix_ids), (_AFTER, after)]
    opening = [name for name, ids in parts[:2] if ids]
    closing = [_AFTER] if after else []
    single = opening + ["$A"] + closing
    pair = single + ["$B:1"] + closing  # spaCy never encodes pairs; kept valid
    specials = [
        {"id": name, "ids": ids, "tokens": tokenizer.convert_ids_to_tokens(ids)}
        for name, ids in parts
        if ids
    ]
    backend.post_processor = TemplateProcessing(single=single, pair=pair, special_tokens=specials)


def input_prefix_ids(tokenizer) -> List[int]:
    """The wordpiece ids a tokenizer changed by ``add_input_prefix`` puts
    before each text ([] for any other tokenizer)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    processor = getattr(backend, "post_processor", None)
    if processor is None or type(processor).__name__ != "TemplateProcessing":
        return []
    special = json.loads(processor.__getstate__()).get("special_tokens", {})
    return list(special.get(_PREFIX, {}).get("ids", []))


def _special_ids_around(tokenizer) -> Tuple[List[int], List[int]]:
    """The special tokens the tokenizer puts before and after a text."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain) :])
    return [], []
