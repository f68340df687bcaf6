"""Panels around the stage views: prompt, architecture tree, switches, generation, ..."""
