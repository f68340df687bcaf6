"""The tabs beside the stage walk, one module each: an experiment's set-up and results."""
