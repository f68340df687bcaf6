"""One module per kind of model work the session runs off the GUI thread: what the job
computes, and how its result (if still current) becomes a state transition."""
