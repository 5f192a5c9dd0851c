"""Tools for testing pyengine itself (model fuzzing)."""
