"""Training beyond one ``spacy train`` run: staged training (:mod:`.staged`)."""
