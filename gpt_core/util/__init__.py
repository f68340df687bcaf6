"""Plumbing: atomic writes, matrix files, devices, the allocator setting."""
