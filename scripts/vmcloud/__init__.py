"""vmcloud - the implementation of scripts/vmodule-cloud."""
