"""Services: the workflows on top of the engine and the store (no HTTP here)."""
