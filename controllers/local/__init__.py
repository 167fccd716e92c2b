"""Local stand-ins for what a laptop or CI machine lacks: a real control plane, and later the local runtime."""
