"""Layer 3, measurement: calibration and card export, the evaluation runner and its reports,
randomized-smoothing certification (:mod:`.smoothing`) and adversaries (:mod:`.adversaries`:
adversarial attacks and model-free forgery)."""
