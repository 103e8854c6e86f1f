"""Packaging a trained pipeline: the model card and meta (:mod:`.model_card`)."""
