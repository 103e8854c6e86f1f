"""Decision thresholds tuned on development data (:mod:`.thresholds`)."""
