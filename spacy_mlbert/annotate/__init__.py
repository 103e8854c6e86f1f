"""Annotation of JSONL corpora with a trained pipeline, locally
(:mod:`.jsonl`) or on a Ray cluster (:mod:`.engines`)."""
from .jsonl import annotate, annotate_jsonl  # noqa: F401
